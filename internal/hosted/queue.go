package hosted

import (
	"context"
	"errors"
	"sync"
)

// ErrQueueClosed is returned by Queue operations after Close.
var ErrQueueClosed = errors.New("hosted: queue closed")

// Queue is a bounded in-memory FIFO over a channel, shared by producers and
// consumers. Producers wait for room (back-pressure) or give up at once with
// TryEnqueue; Close stops producers and lets consumers drain what is left.
// All methods are safe for concurrent use.
type Queue[T any] struct {
	ch     chan T
	closed chan struct{} // closed when Close begins, to wake waiting producers

	// mu makes Close wait for sends in progress: producers hold the read
	// lock while sending, Close takes the write lock to close ch, so nothing
	// ever sends on a closed channel.
	mu        sync.RWMutex
	closeOnce sync.Once
}

// NewQueue returns an open queue holding up to capacity items. A capacity of
// zero makes every Enqueue wait for a consumer. It panics if capacity < 0.
func NewQueue[T any](capacity int) *Queue[T] {
	if capacity < 0 {
		panic("hosted: NewQueue with a negative capacity")
	}
	return &Queue[T]{ch: make(chan T, capacity), closed: make(chan struct{})}
}

// Enqueue adds v, waiting for room while the queue is full. It returns
// ctx.Err() if ctx ends first, and ErrQueueClosed if the queue is closed.
func (q *Queue[T]) Enqueue(ctx context.Context, v T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	select {
	case <-q.closed:
		return ErrQueueClosed
	default:
	}
	select {
	case q.ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-q.closed:
		return ErrQueueClosed
	}
}

// TryEnqueue adds v if there is room, without waiting. It returns false if
// the queue is full or closed.
func (q *Queue[T]) TryEnqueue(v T) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	select {
	case <-q.closed:
		return false
	default:
	}
	select {
	case q.ch <- v:
		return true
	default:
		return false
	}
}

// Dequeue removes and returns the oldest item, waiting for one while the
// queue is empty. It returns ctx.Err() if ctx ends first. After Close it
// returns the remaining items, then ErrQueueClosed.
func (q *Queue[T]) Dequeue(ctx context.Context) (T, error) {
	select {
	case v, ok := <-q.ch:
		if !ok {
			var zero T
			return zero, ErrQueueClosed
		}
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// C returns the receive side of the queue, for select loops. The channel is
// closed after Close once the remaining items have been received, so ranging
// over it drains the queue.
func (q *Queue[T]) C() <-chan T { return q.ch }

// Len returns the number of items waiting in the queue.
func (q *Queue[T]) Len() int { return len(q.ch) }

// Cap returns the capacity of the queue.
func (q *Queue[T]) Cap() int { return cap(q.ch) }

// Close closes the queue: producers waiting or arriving later get
// ErrQueueClosed (or false), consumers receive the remaining items and then
// ErrQueueClosed. Close is idempotent and safe to call concurrently with any
// other method.
func (q *Queue[T]) Close() {
	q.closeOnce.Do(func() {
		close(q.closed)
		q.mu.Lock()
		close(q.ch)
		q.mu.Unlock()
	})
}
