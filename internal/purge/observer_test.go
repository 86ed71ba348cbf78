package purge_test

import (
	"context"
	"testing"
	"time"

	"signup/internal/purge"
)

// observed is one call of Observer.Ran.
type observed struct {
	outcome purge.Outcome
	rep     purge.Report
}

// recorder is an Observer that hands each call to the test.
type recorder chan observed

func (r recorder) Ran(o purge.Outcome, rep purge.Report) { r <- observed{o, rep} }

func (r recorder) next(t *testing.T) observed {
	t.Helper()
	select {
	case o := <-r:
		return o
	case <-time.After(20 * time.Second):
		t.Fatal("the observer heard of no run")
	}
	return observed{}
}

// TestObserverHearsEveryOutcome: the observer is told of each attempt at a
// run with its outcome and report: success with counts, busy, the safety
// limit, an interruption, and a scheduled tick another instance served.
func TestObserverHearsEveryOutcome(t *testing.T) {
	rec := make(recorder, 10)
	p, b := setup(t, purge.Config{Observer: rec, BatchSize: 10})
	b.ranBefore(t)
	b.addAccounts(t, 5, 20)

	runOnce(t, p, purge.Options{})
	if o := rec.next(t); o.outcome != purge.OutcomeSucceeded || o.rep.ID == 0 || o.rep.Counts.Unconfirmed != 5 {
		t.Errorf("run: %+v, want succeeded with 5 unconfirmed", o)
	}

	s, ok, err := b.db.Purges().Lock(t.Context(), purge.LockOptions{})
	if !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	p.RunOnce(t.Context(), purge.Options{})
	s.Release(t.Context())
	if o := rec.next(t); o.outcome != purge.OutcomeBusy || o.rep.ID != 0 {
		t.Errorf("run under another's lock: %+v, want busy and no run", o)
	}

	b.addAccounts(t, 150, 0)
	p.RunOnce(t.Context(), purge.Options{})
	if o := rec.next(t); o.outcome != purge.OutcomeFailed || o.rep.Error == "" {
		t.Errorf("run past the safety limit: %+v, want failed", o)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p.RunOnce(ctx, purge.Options{Force: true})
	if o := rec.next(t); o.outcome != purge.OutcomeInterrupted {
		t.Errorf("run with its context ended: %+v, want interrupted", o)
	}

	// Two instances start on the same schedule: the first catches up the
	// latest tick, the second finds it served.
	for i, want := range []purge.Outcome{purge.OutcomeSucceeded, purge.OutcomeServed} {
		inst := newPurger(t, b, b.db, purge.Config{Observer: rec, Instance: "instance", MaxShare: 1})
		if err := inst.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		o := rec.next(t)
		if err := inst.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if o.outcome != want || o.rep.Scheduled.IsZero() != (want == purge.OutcomeServed) {
			t.Errorf("instance %d at start: %+v, want %s", i+1, o, want)
		}
	}
}
