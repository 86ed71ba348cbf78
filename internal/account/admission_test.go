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

// finish ends a running hash after it took d on clock.
func finish(clock *fakeClock, done func(), d time.Duration) {
	clock.advance(d)
	done()
}

func TestTurnQueueLearnsTheHashCost(t *testing.T) {
	// One slot: the estimate is the median of the last minWindow hashes,
	// seeded at 1 ms. A 75 ms patience admits 75 waiters on the seed;
	// once most of the window took 50 ms, only one.
	q, clock := newTestQueue(1, time.Millisecond, 75*time.Millisecond)
	half := len(q.recent) / 2
	for i := range half + 1 {
		done, err := q.take(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		finish(clock, done, 50*time.Millisecond)
		want := time.Millisecond
		if i == half {
			want = 50 * time.Millisecond
		}
		if q.cost != want {
			t.Fatalf("cost after %d hashes of 50 ms in a window of %d = %v, want %v", i+1, len(q.recent), q.cost, want)
		}
	}
	if _, err := q.take(t.Context()); err != nil { // running
		t.Fatal(err)
	}
	queueWaiter(t, q, t.Context()) // waits 50 ms: admitted
	var busy *BusyError
	if _, err := q.take(t.Context()); !errors.As(err, &busy) || busy.RetryAfter != 100*time.Millisecond {
		t.Fatalf("take behind one waiter = %v, want a *BusyError of 100ms", err)
	}

	// The estimate follows the middle of the window: one slow hash among
	// steady ones does not move it, and old hashes leave the window.
	q2, clock2 := newTestQueue(1, time.Millisecond, 0)
	h := len(q2.recent) / 2 // the window is 2h+1 long
	steps := []struct {
		n          int
		took, want time.Duration
	}{
		{h + 1, 80 * time.Millisecond, 80 * time.Millisecond}, // h seeds, h+1 × 80
		{1, 500 * time.Millisecond, 80 * time.Millisecond},    // h-1 seeds, h+1 × 80, 500
		{h, 120 * time.Millisecond, 120 * time.Millisecond},   // h × 80, 500, h × 120
	}
	for _, st := range steps {
		for range st.n {
			done, err := q2.take(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			finish(clock2, done, st.took)
		}
		if q2.cost != st.want {
			t.Errorf("after %d more hashes of %v: cost = %v, want %v", st.n, st.took, q2.cost, st.want)
		}
	}
}

func TestTurnQueueTimesAHashFromItsHandover(t *testing.T) {
	// A slot handed over at 50 ms whose goroutine only gets to run 20 ms
	// later (a busy machine), then hashes for 30 ms, was busy for 50 ms:
	// that is what the queue's drain is made of.
	q, clock := newTestQueue(1, time.Millisecond, 0)
	done, err := q.take(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w := queueWaiter(t, q, t.Context())
	finish(clock, done, 50*time.Millisecond)
	clock.advance(20 * time.Millisecond)
	r := <-w
	if r.err != nil {
		t.Fatal(r.err)
	}
	finish(clock, r.done, 30*time.Millisecond)
	q.mu.Lock()
	defer q.mu.Unlock()
	if got := q.recent[(q.next+len(q.recent)-1)%len(q.recent)]; got != 50*time.Millisecond {
		t.Errorf("the handed-over hash was timed at %v, want 50ms (20 ms waking, 30 ms hashing)", got)
	}
}

func TestTurnQueueServesABurstItCanServe(t *testing.T) {
	// A burst as it goes on a real machine (figures from a 2-core one):
	// two slots, a seed of 23 ms, and 200 signups at once with 4.5 s of
	// patience. The two hashes that start first share the machine with
	// the burst's arrival and take 150 ms; after that a round takes 27 to
	// 58 ms, 39 ms on average, so the queue drains in 4.05 s and nobody
	// may be refused. Judged by those first two hashes the queue would
	// look 15 s long; judged by the median of the last five it swings
	// with each round and looks too long the first time it peaks.
	const slots, burst = 2, 200
	q, clock := newTestQueue(slots, 23*time.Millisecond, 4500*time.Millisecond)
	var running []func()
	for range slots {
		done, err := q.take(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		running = append(running, done)
	}
	var waiters []<-chan takeResult
	for range burst - slots {
		waiters = append(waiters, queueWaiter(t, q, t.Context()))
	}
	rounds := []time.Duration{36, 45, 30, 58, 35, 42, 27, 49, 33, 38}
	took := 150 * time.Millisecond
	for i := 0; i < len(waiters); i += slots {
		clock.advance(took)
		for _, done := range running {
			done()
		}
		running = running[:0]
		for j, w := range waiters[i : i+slots] {
			r := <-w
			if r.err != nil {
				t.Fatalf("waiter %d, %v into the burst: %v, want its turn", i+j, clock.now().Sub(time.Unix(1_700_000_000, 0)), r.err)
			}
			running = append(running, r.done)
		}
		took = rounds[(i/slots)%len(rounds)] * time.Millisecond
	}
	for _, done := range running {
		done()
	}
	if q.inFlight() != 0 {
		t.Errorf("in flight after all finished: %d", q.inFlight())
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
	// One slot and a 1 ms seed; every hash then takes 50 ms. While fewer
	// than half the window's hashes took that long, nobody is refused: a
	// few slow hashes may be the burst's own arrival. Once most have
	// (slow hashes in), those next in line who can still start within the
	// wait limit (the maximum wait unless set longer) stay; those behind
	// them, who would wait longer, are refused at once, not when the
	// server gives up on them.
	for _, tc := range []struct {
		name string
		// limit is the wait limit in hashes beyond the slow ones (0: not
		// set); stay is how many may wait on.
		limit, stay int
	}{
		{"limit not set: the maximum wait", 0, 12},
		{"limit shorter than the maximum wait", 6, 12},
		{"limit longer than the maximum wait", 18, 18},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, clock := newTestQueue(1, time.Millisecond, 0)
			slow := len(q.recent)/2 + 1
			q.maxWait = time.Duration(slow+12) * 50 * time.Millisecond
			if tc.limit > 0 {
				WithWaitLimit(time.Duration(slow+tc.limit) * 50 * time.Millisecond)(q)
			}
			done, err := q.take(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var waiters []<-chan takeResult
			for range slow + 24 {
				waiters = append(waiters, queueWaiter(t, q, t.Context()))
			}
			for i := range slow {
				finish(clock, done, 50*time.Millisecond)
				r := <-waiters[i]
				if r.err != nil {
					t.Fatalf("waiter %d, next in line: %v", i, r.err)
				}
				done = r.done
				q.mu.Lock()
				n := q.waiting.Len()
				q.mu.Unlock()
				if want := len(waiters) - i - 1; i < slow-1 && n != want {
					t.Fatalf("after %d slow hashes: %d waiting, want all %d still waiting", i+1, n, want)
				}
			}
			for i, w := range waiters[slow+tc.stay:] {
				select {
				case r := <-w:
					var busy *BusyError
					if !errors.As(r.err, &busy) {
						t.Fatalf("waiter %d: %v, want a *BusyError", slow+tc.stay+i, r.err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("waiter %d, who would wait past the limit, is still waiting", slow+tc.stay+i)
				}
			}
			q.mu.Lock()
			n := q.waiting.Len()
			q.mu.Unlock()
			if n != tc.stay {
				t.Errorf("%d waiting after the tail was refused, want the %d that can start within the limit", n, tc.stay)
			}
			// The ones that stayed are served, in order.
			for i, w := range waiters[slow : slow+tc.stay] {
				finish(clock, done, 50*time.Millisecond)
				r := <-w
				if r.err != nil {
					t.Fatalf("waiter %d, kept in the queue: %v", slow+i, r.err)
				}
				done = r.done
			}
			done()
		})
	}
}
