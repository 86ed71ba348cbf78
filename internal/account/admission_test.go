package account

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"signup/internal/waitfor"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestQueue(slots int, cost, maxWait time.Duration) (*turnQueue, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	return newTurnQueue(slots, cost, WithMaxWait(maxWait), WithClock(clock.now)), clock
}

// queueWaiter takes a turn in the background once the queue has one more
// waiter than before, so that arrival order is the order of the calls.
func queueWaiter(t *testing.T, q *turnQueue, ctx context.Context) <-chan takeResult {
	t.Helper()
	q.mu.Lock()
	before := q.waiting.Len()
	q.mu.Unlock()
	res := make(chan takeResult, 1)
	go func() {
		done, err := q.take(ctx)
		res <- takeResult{done, err}
	}()
	waitfor.True(t, 10*time.Second, "the hash to queue", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.waiting.Len() == before+1
	})
	return res
}

type takeResult struct {
	done func()
	err  error
}

func TestTurnQueueShedsWhatWouldWaitTooLongAtOnce(t *testing.T) {
	// Two slots, 100 ms a hash, a second of patience: the queue takes what
	// it can serve within a second (20 more hashes, ten rounds of two) and
	// refuses the 21st at once.
	q, _ := newTestQueue(2, 100*time.Millisecond, time.Second)
	for range 2 {
		if _, err := q.take(t.Context()); err != nil {
			t.Fatalf("take with a free slot: %v", err)
		}
	}
	for range 20 {
		queueWaiter(t, q, t.Context())
	}
	_, err := q.take(t.Context())
	var busy *BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("take behind 20 waiters = %v, want a *BusyError", err)
	}
	if want := 1100 * time.Millisecond; busy.RetryAfter != want {
		t.Errorf("RetryAfter = %v, want %v (eleven rounds of 100 ms)", busy.RetryAfter, want)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.waiting.Len() != 20 || q.running != 2 {
		t.Errorf("after shedding: %d waiting, %d running; want 20 and 2", q.waiting.Len(), q.running)
	}
}

func TestTurnQueueServesInArrivalOrder(t *testing.T) {
	q, _ := newTestQueue(1, 10*time.Millisecond, 0)
	first, err := q.take(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var waiters []<-chan takeResult
	for range 5 {
		waiters = append(waiters, queueWaiter(t, q, t.Context()))
	}
	done := first
	for i, w := range waiters {
		done()
		r := <-w
		if r.err != nil {
			t.Fatalf("waiter %d: %v", i, r.err)
		}
		for j, later := range waiters[i+1:] {
			select {
			case <-later:
				t.Fatalf("waiter %d got its turn before waiter %d finished", i+1+j, i)
			default:
			}
		}
		done = r.done
	}
	done()
	if n := q.inFlight(); n != 0 {
		t.Errorf("in flight after all finished: %d", n)
	}
	if n := q.peak(); n != 1 {
		t.Errorf("peak = %d, want 1", n)
	}
}

func TestTurnQueueLearnsTheHashCost(t *testing.T) {
	// Seeded at 1 ms a hash, a 75 ms patience admits 75 waiters; once a
	// hash has been timed at 50 ms, only one.
	q, clock := newTestQueue(1, time.Millisecond, 75*time.Millisecond)
	done, err := q.take(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(50 * time.Millisecond)
	done()
	if q.cost != 50*time.Millisecond {
		t.Fatalf("cost after one 50 ms hash = %v, want 50ms", q.cost)
	}
	if _, err := q.take(t.Context()); err != nil { // running
		t.Fatal(err)
	}
	queueWaiter(t, q, t.Context()) // waits 50 ms: admitted
	var busy *BusyError
	if _, err := q.take(t.Context()); !errors.As(err, &busy) || busy.RetryAfter != 100*time.Millisecond {
		t.Fatalf("take behind one waiter = %v, want a *BusyError of 100ms", err)
	}

	// Later hashes move the average by an eighth of the difference.
	q2, clock2 := newTestQueue(1, time.Millisecond, 0)
	for _, d := range []time.Duration{80 * time.Millisecond, 160 * time.Millisecond} {
		done, err := q2.take(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		clock2.advance(d)
		done()
	}
	if want := 90 * time.Millisecond; q2.cost != want {
		t.Errorf("cost after 80 ms then 160 ms = %v, want %v", q2.cost, want)
	}
}

func TestTurnQueueCancelledWaiterLeavesTheQueue(t *testing.T) {
	q, _ := newTestQueue(1, 10*time.Millisecond, 0)
	done, err := q.take(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	gone := queueWaiter(t, q, ctx)
	next := queueWaiter(t, q, t.Context())
	cancel()
	if r := <-gone; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled waiter = %v, want context.Canceled", r.err)
	}
	done()
	r := <-next
	if r.err != nil {
		t.Fatalf("the waiter behind the cancelled one: %v", r.err)
	}
	r.done()
	if n := q.inFlight(); n != 0 {
		t.Errorf("in flight after all finished: %d", n)
	}
}

func TestTurnQueueWaitIsReportedToTheContext(t *testing.T) {
	q, _ := newTestQueue(1, 10*time.Millisecond, 0)
	done, err := q.take(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []string
	ctx := WithTurnWait(t.Context(), func() func() {
		mu.Lock()
		events = append(events, "wait")
		mu.Unlock()
		return func() {
			mu.Lock()
			events = append(events, "resume")
			mu.Unlock()
		}
	})
	w := queueWaiter(t, q, ctx)
	done()
	r := <-w
	r.done()
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0] != "wait" || events[1] != "resume" {
		t.Errorf("events = %v, want [wait resume]", events)
	}

	// A hash that finds a free slot does not wait.
	events = nil
	mu.Unlock()
	d, err := q.take(ctx)
	mu.Lock()
	if err != nil {
		t.Fatal(err)
	}
	d()
	if len(events) != 0 {
		t.Errorf("events for a hash with a free slot = %v, want none", events)
	}
}

func TestTurnQueueShedsTheTailOnceHashesProveSlower(t *testing.T) {
	// Ten hashes queue on a 1 ms seed cost with 100 ms of patience; the
	// running one then takes 50 ms. The next in line starts at once (50 ms
	// waited); the one behind it would wait 50 ms more, 100 ms in all, and
	// stays; the seven behind that would wait longer and are refused now,
	// not when the server gives up on them.
	q, clock := newTestQueue(1, time.Millisecond, 100*time.Millisecond)
	done, err := q.take(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var waiters []<-chan takeResult
	for range 9 {
		waiters = append(waiters, queueWaiter(t, q, t.Context()))
	}
	clock.advance(50 * time.Millisecond)
	done()
	first := <-waiters[0]
	if first.err != nil {
		t.Fatalf("next in line: %v", first.err)
	}
	for i, w := range waiters[2:] {
		var busy *BusyError
		if r := <-w; !errors.As(r.err, &busy) {
			t.Fatalf("waiter %d: %v, want a *BusyError", i+2, r.err)
		}
	}
	select {
	case r := <-waiters[1]:
		t.Fatalf("the waiter within its patience was answered early: %v", r.err)
	default:
	}
	first.done()
	if r := <-waiters[1]; r.err != nil {
		t.Fatalf("second in line: %v", r.err)
	} else {
		r.done()
	}
}
