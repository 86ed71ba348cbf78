package hosted

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestQueueBackPressure(t *testing.T) {
	q := NewQueue[int](1)
	if err := q.Enqueue(t.Context(), 1); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if q.Len() != 1 || q.Cap() != 1 {
		t.Errorf("Len, Cap = %d, %d; want 1, 1", q.Len(), q.Cap())
	}

	// A full queue makes producers wait, until their context ends...
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := q.Enqueue(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enqueue on a full queue = %v, want a deadline error", err)
	}
	cancelled, cancelNow := context.WithCancel(t.Context())
	cancelNow()
	if err := q.Enqueue(cancelled, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue with a cancelled context = %v, want context.Canceled", err)
	}

	// ...or until a consumer makes room.
	errc := make(chan error, 1)
	go func() { errc <- q.Enqueue(t.Context(), 2) }()
	select {
	case err := <-errc:
		t.Fatalf("Enqueue on a full queue returned %v without waiting", err)
	default:
	}
	if v, err := q.Dequeue(t.Context()); v != 1 || err != nil {
		t.Fatalf("Dequeue = %v, %v; want 1", v, err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("waiting Enqueue: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("Enqueue still waiting after a Dequeue made room")
	}
	if v, err := q.Dequeue(t.Context()); v != 2 || err != nil {
		t.Fatalf("Dequeue = %v, %v; want 2", v, err)
	}
}

func TestQueueEnqueueUnblockedByCancel(t *testing.T) {
	q := NewQueue[int](1)
	if !q.TryEnqueue(1) {
		t.Fatal("TryEnqueue on an empty queue failed")
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- q.Enqueue(ctx, 2) }()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Enqueue = %v, want context.Canceled", err)
		}
	case <-time.After(patience):
		t.Fatal("cancel did not unblock Enqueue")
	}
}

func TestQueueTryEnqueue(t *testing.T) {
	q := NewQueue[string](2)
	if !q.TryEnqueue("a") || !q.TryEnqueue("b") {
		t.Fatal("TryEnqueue with room failed")
	}
	if q.TryEnqueue("c") {
		t.Error("TryEnqueue on a full queue succeeded")
	}
	q.Close()
	if _, err := q.Dequeue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if q.TryEnqueue("d") {
		t.Error("TryEnqueue on a closed queue succeeded")
	}
}

func TestQueueDequeueWaitsForItemsOrContext(t *testing.T) {
	q := NewQueue[int](1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := q.Dequeue(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dequeue on an empty queue = %v, want a deadline error", err)
	}
}

func TestQueueDrainsOnClose(t *testing.T) {
	t.Run("Dequeue", func(t *testing.T) {
		q := NewQueue[int](4)
		for i := range 3 {
			if err := q.Enqueue(t.Context(), i); err != nil {
				t.Fatal(err)
			}
		}
		q.Close()
		q.Close() // idempotent
		if err := q.Enqueue(t.Context(), 9); !errors.Is(err, ErrQueueClosed) {
			t.Fatalf("Enqueue after Close = %v, want ErrQueueClosed", err)
		}
		for i := range 3 {
			if v, err := q.Dequeue(t.Context()); v != i || err != nil {
				t.Fatalf("Dequeue = %v, %v; want %d", v, err, i)
			}
		}
		if _, err := q.Dequeue(t.Context()); !errors.Is(err, ErrQueueClosed) {
			t.Fatalf("Dequeue on a drained queue = %v, want ErrQueueClosed", err)
		}
	})
	t.Run("C", func(t *testing.T) {
		q := NewQueue[int](4)
		for i := range 3 {
			q.TryEnqueue(i)
		}
		q.Close()
		var got []int
		for v := range q.C() {
			got = append(got, v)
		}
		if len(got) != 3 || got[0] != 0 || got[2] != 2 {
			t.Errorf("drained %v, want [0 1 2]", got)
		}
	})
}

func TestQueueCloseWakesWaitingProducer(t *testing.T) {
	q := NewQueue[int](1)
	q.TryEnqueue(1)
	errc := make(chan error, 1)
	go func() { errc <- q.Enqueue(t.Context(), 2) }()
	q.Close()
	select {
	case err := <-errc:
		// It may have raced in before Close; either way the queue stayed sound.
		if err != nil && !errors.Is(err, ErrQueueClosed) {
			t.Fatalf("Enqueue = %v, want ErrQueueClosed", err)
		}
	case <-time.After(patience):
		t.Fatal("Close did not wake the waiting producer")
	}
}

func TestQueueConcurrentUse(t *testing.T) {
	q := NewQueue[int](8)
	var accepted, received atomic.Int64
	var producers, consumers sync.WaitGroup

	for p := range 8 {
		producers.Go(func() {
			for i := range 500 {
				if p%2 == 0 {
					if q.Enqueue(context.Background(), i) == nil {
						accepted.Add(1)
					}
				} else if q.TryEnqueue(i) {
					accepted.Add(1)
				}
				_ = q.Len()
			}
		})
	}
	for c := range 4 {
		consumers.Go(func() {
			if c%2 == 0 {
				for range q.C() {
					received.Add(1)
				}
				return
			}
			for {
				if _, err := q.Dequeue(context.Background()); err != nil {
					return
				}
				received.Add(1)
			}
		})
	}
	// Close while producers are still at it, from several goroutines.
	var closers sync.WaitGroup
	for range 3 {
		closers.Go(q.Close)
	}
	closers.Wait()
	producers.Wait()
	consumers.Wait()

	if a, r := accepted.Load(), received.Load(); a != r {
		t.Errorf("accepted %d items but consumers received %d", a, r)
	}
}
