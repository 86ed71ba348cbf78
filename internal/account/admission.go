package account

import (
	"container/list"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// A burst of signups is a queue, not an outage: a hash that finds every
// slot taken waits its turn in arrival order, however long the request's
// own deadline is, as long as the wait it can expect is one a person
// would sit through. A hash that would wait longer is refused at once
// with a BusyError saying when to come back, rather than after waiting.
//
// A hash once queued keeps its place even when the hashes timed after it
// came show the machine to be slower than expected, as long as it can
// still be served within the wait limit (WithWaitLimit: for the web, what
// is left of a response's time once the request's own work is allowed
// for); only past that is it refused after all, since its answer would
// come too late for anyone to read. Refusing it at the maximum wait
// instead would throw away the wait it has already sat through.
//
// The expected wait is the queue ahead of it in rounds of the hasher's
// concurrency, times the time a hash has been taking lately: the median
// wall time of the last hashes (wall clock, so a machine busy with other
// work counts as a slower one), over a window of 2×slots+1 hashes and at
// least minWindow. The window starts filled with a seed cost.
//
// A median, not an average or the last hash: the first hashes of a burst
// run while the burst itself is still arriving (hundreds of requests
// read, checked and queued) and in memory not yet touched, and take
// several times their usual time (150–190 ms against 25–45 ms, measured
// on 2 cores with 500 signups) for a reason that is over long before the
// queue is. Up to slots of them can be slow that way; only a majority of
// the window moves the estimate, so they cannot make the queue look
// several times longer than it is and shed a tail that would have been
// served. And a tail that is judged again after every hash must be judged
// on a figure that does not swing with each one: the median of a few
// hashes' times varies by tens of percent, of minWindow by a few (with a
// window of 15, 6 of a 500-signup burst were still refused in one of
// three runs). A machine that really is slower than the seed moves the
// estimate after half the window: 16 hashes, under a second.

// minWindow is the fewest hashes whose median is the expected cost.
const minWindow = 31

// DefaultMaxWait is how long a hash may expect to wait for its turn before
// it is refused: well within what a browser waits for an answer (minutes)
// and what a person waits for a form (tens of seconds), and short enough
// that the wait and the request's own work end before a server's usual
// 30 s bound on a response.
const DefaultMaxWait = 15 * time.Second

// BusyError is returned instead of a hash when the hashes already waiting
// would make this one wait longer than the Hasher's maximum wait. Nothing
// was done; the caller should answer at once and ask to retry later.
type BusyError struct {
	// RetryAfter is the wait this hash could expect: by then the queue
	// ahead of it will have gone through.
	RetryAfter time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("account: too many passwords waiting to be hashed (expected wait %v)", e.RetryAfter.Round(time.Millisecond))
}

// HasherOption changes how a Hasher queues hashes.
type HasherOption func(*turnQueue)

// WithMaxWait sets the longest expected wait for a turn a hash accepts
// (DefaultMaxWait by default); 0 or less means no limit.
func WithMaxWait(d time.Duration) HasherOption {
	return func(q *turnQueue) { q.maxWait = d }
}

// WithWaitLimit sets how long in all a hash already queued may be kept
// waiting when the hashes timed since it came show that its turn will come
// later than expected: one that would wait longer is refused after all.
// It is the maximum wait by default, and never less; with no maximum wait
// nothing is refused.
func WithWaitLimit(d time.Duration) HasherOption {
	return func(q *turnQueue) { q.waitLimit = d }
}

// WithClock sets the clock hashes are timed with (time.Now by default).
func WithClock(now func() time.Time) HasherOption {
	return func(q *turnQueue) { q.now = now }
}

// TurnWaiter is told when a hash must wait for its turn: WaitForTurn is
// called as the wait begins, and the function it returns as it ends. The
// HTTP layer's request deadline is one, to leave that wait out of a
// request's budget: a queued signup is not a slow one.
type TurnWaiter interface {
	WaitForTurn() (resume func())
}

// TurnWaitKey is the context key under which a Hasher looks for a
// TurnWaiter. A context may also answer it itself, from its Value method.
type TurnWaitKey struct{}

// turnWaitFunc adapts a function to TurnWaiter.
type turnWaitFunc func() func()

func (f turnWaitFunc) WaitForTurn() func() { return f() }

// WithTurnWait returns ctx carrying f as its TurnWaiter.
func WithTurnWait(ctx context.Context, f func() (resume func())) context.Context {
	return context.WithValue(ctx, TurnWaitKey{}, turnWaitFunc(f))
}

// turnQueue lets at most slots hashes run at once and queues the others
// in arrival order.
type turnQueue struct {
	slots     int
	maxWait   time.Duration
	waitLimit time.Duration
	now       func() time.Time

	mu      sync.Mutex
	running int
	waiting list.List // of *turn, oldest first
	// recent holds the wall times of the last len(recent) hashes, next
	// being the oldest (the next overwritten); cost is their median, what
	// a hash is expected to take.
	recent     []time.Duration
	next       int
	cost       time.Duration
	maxRunning int
}

// turn is a hash waiting in the queue; granted is closed when it may run,
// or when it is shed (busy set).
type turn struct {
	granted chan struct{}
	arrived time.Time
	// given is set, under the queue's lock, when the turn is handed over,
	// and givenAt to when; busy when the hash is shed instead.
	given   bool
	givenAt time.Time
	busy    *BusyError
}

// newTurnQueue returns a queue for slots concurrent hashes, each expected
// to take seed until most of a window of hashes have been timed.
func newTurnQueue(slots int, seed time.Duration, opts ...HasherOption) *turnQueue {
	q := &turnQueue{slots: slots, maxWait: DefaultMaxWait, now: time.Now, cost: seed,
		recent: slices.Repeat([]time.Duration{seed}, max(2*slots+1, minWindow))}
	for _, o := range opts {
		o(q)
	}
	return q
}

// timed records how long a hash took and updates the expected cost to
// the median of the window. Call with mu held.
func (q *turnQueue) timed(took time.Duration) {
	q.recent[q.next] = took
	q.next = (q.next + 1) % len(q.recent)
	sorted := slices.Clone(q.recent)
	slices.Sort(sorted)
	q.cost = sorted[len(sorted)/2]
}

// expectedWait is how long a hash arriving now would wait for its turn.
// Call with mu held.
func (q *turnQueue) expectedWait() time.Duration {
	if q.running < q.slots && q.waiting.Len() == 0 {
		return 0
	}
	// It starts once the waiting ones ahead of it and one running hash
	// have finished, slots at a time.
	rounds := (q.waiting.Len() + q.slots) / q.slots
	return time.Duration(rounds) * q.cost
}

// take waits for a turn and returns the function that gives it back. It
// fails at once with a *BusyError when the expected wait is over the
// maximum, and with ctx's error if ctx ends while waiting.
func (q *turnQueue) take(ctx context.Context) (done func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	if q.running < q.slots && q.waiting.Len() == 0 {
		q.start()
		began := q.now()
		q.mu.Unlock()
		return q.finisher(began), nil
	}
	if wait := q.expectedWait(); q.maxWait > 0 && wait > q.maxWait {
		q.mu.Unlock()
		return nil, &BusyError{RetryAfter: wait}
	}
	t := &turn{granted: make(chan struct{}), arrived: q.now()}
	elem := q.waiting.PushBack(t)
	q.mu.Unlock()

	if w, ok := ctx.Value(TurnWaitKey{}).(TurnWaiter); ok {
		resume := w.WaitForTurn()
		defer resume()
	}
	select {
	case <-t.granted:
		if t.busy != nil {
			return nil, t.busy
		}
		return q.finisher(t.givenAt), nil
	case <-ctx.Done():
		q.mu.Lock()
		defer q.mu.Unlock()
		if t.given {
			// Granted as ctx ended: pass the turn on rather than lose it.
			q.handOver()
		} else {
			q.waiting.Remove(elem)
		}
		return nil, ctx.Err()
	}
}

// start counts a hash as running. Call with mu held.
func (q *turnQueue) start() {
	q.running++
	q.maxRunning = max(q.maxRunning, q.running)
}

// finisher returns the function that ends a running hash that got its
// slot at began: it times it and gives its slot to the oldest waiting
// hash. A hash handed a slot is timed from the handing over, not from when
// its goroutine woke up to run: on a busy machine that takes milliseconds
// in which the slot does nothing, and the queue drains that much slower.
func (q *turnQueue) finisher(began time.Time) func() {
	return func() {
		took := q.now().Sub(began)
		q.mu.Lock()
		defer q.mu.Unlock()
		q.timed(took)
		q.handOver()
		q.shedOverdue()
	}
}

// shedOverdue refuses, newest first, the waiting hashes that the cost as
// now measured would keep waiting longer than the wait limit in all: a
// burst that came before any hash was timed was admitted on the seed
// cost, and on a machine slower than the seed its tail would otherwise
// wait until the server cut its connection. Call with mu held.
func (q *turnQueue) shedOverdue() {
	if q.maxWait <= 0 {
		return
	}
	limit := max(q.maxWait, q.waitLimit)
	now := q.now()
	for e := q.waiting.Back(); e != nil; e = q.waiting.Back() {
		t := e.Value.(*turn)
		left := time.Duration((q.waiting.Len()-1+q.slots)/q.slots) * q.cost
		if now.Sub(t.arrived)+left <= limit {
			return
		}
		q.waiting.Remove(e)
		t.busy = &BusyError{RetryAfter: left}
		close(t.granted)
	}
}

// handOver gives a slot that has become free to the oldest waiting hash,
// or frees it. Call with mu held.
func (q *turnQueue) handOver() {
	if front := q.waiting.Front(); front != nil {
		t := q.waiting.Remove(front).(*turn)
		t.given, t.givenAt = true, q.now()
		close(t.granted)
		return
	}
	q.running--
}

// inFlight and peak report how many hashes run now and the most that ran
// at once.
func (q *turnQueue) inFlight() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running
}

func (q *turnQueue) peak() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.maxRunning
}

// run calls f while holding a turn.
func (h *Hasher) run(ctx context.Context, f func()) error {
	done, err := h.turns.take(ctx)
	if err != nil {
		return err
	}
	defer done()
	f()
	return nil
}

// InFlight returns how many hashes are running now.
func (h *Hasher) InFlight() int { return h.turns.inFlight() }

// MaxInFlight returns the most hashes that have run at once since h was
// made. It never exceeds the concurrency given to NewHasher.
func (h *Hasher) MaxInFlight() int { return h.turns.peak() }

// seedCost is what a hash with p is expected to take until hashes have
// been timed: about 0.6 µs per KiB and pass on a current server core
// (19 MiB, two passes: some 23 ms).
func seedCost(p Params) time.Duration {
	return time.Duration(p.Memory) * time.Duration(p.Time) * 600 * time.Nanosecond
}
