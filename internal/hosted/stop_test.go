package hosted

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestStopDelay: asked to stop, the host turns readiness off at once and
// keeps every service running for StopDelay, then stops them.
func TestStopDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := setup(t, Config{StopDelay: 5 * time.Second})
		b.add("a", Options{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- b.host.Run(ctx) }()
		<-b.host.Started()

		t0 := time.Now()
		cancel() // the first SIGTERM
		<-b.host.Stopping()
		if code, rep := probe(t, b.host, TagReady); code != http.StatusServiceUnavailable || rep.find(t, lifecycleCheck).Reason != "stopping" {
			t.Errorf("during the delay: %d %+v, want 503 stopping", code, rep)
		}
		time.Sleep(5*time.Second - time.Nanosecond)
		synctest.Wait()
		if got := b.j.all(); len(got) != 1 {
			t.Fatalf("calls before the delay ran out: %q, want only the start", got)
		}
		if s := b.state(t, "a"); s.Status != StatusRunning {
			t.Errorf("a is %v during the delay, want running", s.Status)
		}
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if took := time.Since(t0); took != 5*time.Second {
			t.Errorf("stopped %v after the signal, want the delay, 5s", took)
		}
	})
}

// TestStopDelayCutShortByFailure: a service failing under StopHost during
// the delay stops the host at once.
func TestStopDelayCutShortByFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{StopDelay: time.Minute})
		fail := make(chan struct{})
		h.Add("a", Background(func(ctx context.Context) error {
			select {
			case <-fail:
				return errBoom
			case <-ctx.Done():
				return nil
			}
		}), Options{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- h.Run(ctx) }()
		<-h.Started()
		t0 := time.Now()
		cancel()
		<-h.Stopping()
		time.Sleep(time.Second)
		close(fail)
		if err := <-done; !errors.Is(err, errBoom) {
			t.Fatalf("Run = %v, want the failure", err)
		}
		if took := time.Since(t0); took != time.Second {
			t.Errorf("stopped %v after the signal, want 1s: at the failure", took)
		}
	})
}

// TestSoftThenHardStop: a background worker finishing a job it has in hand
// keeps its InFlight context until the soft deadline, then loses it and
// returns; the host reports the hard stop, and Run still succeeds within
// the budget. A worker done before its soft deadline needs no hard stop.
func TestSoftThenHardStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const budget = 8 * time.Second
		b := setup(t, Config{ShutdownTimeout: budget})
		var interrupted time.Duration
		stopAt := make(chan time.Time, 1)
		b.host.Add("quick", Background(func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		}), Options{})
		b.host.Add("slow", Background(func(ctx context.Context) error {
			<-ctx.Done() // Stop: take no new job, finish the one in hand
			job := InFlight(ctx)
			if job.Err() != nil {
				t.Error("the in-flight context ended with the soft stop")
			}
			<-job.Done() // a job that takes for ever
			interrupted = time.Since(<-stopAt)
			return nil
		}), Options{})
		done := make(chan error)
		go func() { done <- b.host.Run(t.Context()) }()
		<-b.host.Started()
		stopAt <- time.Now()
		b.host.Stop()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		// slow stops first, with quick still to stop: its hard limit keeps
		// quick's reserve (a tenth of the budget, at most 1s).
		soft, hard := stopDeadlines(time.Time{}, time.Time{}.Add(budget), budget, 1)
		if want := soft.Sub(time.Time{}); interrupted != want {
			t.Errorf("the in-flight job was cut after %v, want the soft deadline, %v (hard limit %v)", interrupted, want, hard.Sub(time.Time{}))
		}
		if s := b.state(t, "slow"); !s.HardStop || s.Status != StatusStopped {
			t.Errorf("slow: %+v, want stopped after a hard stop", s)
		}
		if s := b.state(t, "quick"); s.HardStop {
			t.Errorf("quick: %+v, want no hard stop", s)
		}
		if logs := b.logs.find("service needed the hard stop", "slow"); len(logs) != 1 {
			t.Errorf("hard stop logged %d times, want once", len(logs))
		}
		b.logs.mu.Lock()
		var hardLogs []string
		for _, r := range b.logs.records {
			if r.msg == "host stopped" {
				hardLogs = append(hardLogs, r.attrs["hard_stopped"].String())
			}
		}
		b.logs.mu.Unlock()
		if len(hardLogs) != 1 || hardLogs[0] != "[slow]" {
			t.Errorf("host stopped logged with hard_stopped %q, want once with [slow]", hardLogs)
		}
	})
}

// TestHardLimitAbandonsAWedgedWorker: a background func that ignores both
// of its contexts is abandoned at its hard limit, and Run returns within
// the budget with an error naming it.
func TestHardLimitAbandonsAWedgedWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const budget = 4 * time.Second
		release := make(chan struct{})
		h := New(Config{ShutdownTimeout: budget})
		h.Add("wedged", Background(func(context.Context) error {
			<-release
			return nil
		}), Options{})
		done := make(chan error)
		go func() { done <- h.Run(t.Context()) }()
		<-h.Started()
		t0 := time.Now()
		h.Stop()
		err := <-done
		if took := time.Since(t0); took != budget {
			t.Errorf("Run returned %v after Stop, want the budget %v", took, budget)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run = %v, want the overrun", err)
		}
		close(release)
		synctest.Wait()
	})
}

func TestStopDeadlines(t *testing.T) {
	t0 := time.Time{}
	for _, c := range []struct {
		name               string
		now                time.Duration
		budget             time.Duration
		after              int
		wantSoft, wantHard time.Duration
	}{
		{"last to stop, whole budget", 0, 4 * time.Second, 0, 3 * time.Second, 4 * time.Second},
		{"one after: keeps 1s", 0, 30 * time.Second, 1, 21750 * time.Millisecond, 29 * time.Second},
		{"reserve at most half", 0, 10 * time.Second, 20, 3750 * time.Millisecond, 5 * time.Second},
		{"budget spent: a moment", 12 * time.Second, 10 * time.Second, 0, 12*time.Second + 375*time.Millisecond, 12*time.Second + 500*time.Millisecond},
	} {
		soft, hard := stopDeadlines(t0.Add(c.now), t0.Add(c.budget), c.budget, c.after)
		if soft.Sub(t0) != c.wantSoft || hard.Sub(t0) != c.wantHard {
			t.Errorf("%s: soft %v hard %v, want %v %v", c.name, soft.Sub(t0), hard.Sub(t0), c.wantSoft, c.wantHard)
		}
	}
}
