package hosted

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestStartsInOrderAndStopsInReverse(t *testing.T) {
	b := setup(t, Config{})
	for _, name := range []string{"a", "b", "c"} {
		b.add(name, Options{})
	}
	errc := b.run(t, t.Context())
	waitClosed(t, b.host.Started(), "started")
	b.host.Stop()
	if err := wait(t, errc); err != nil {
		t.Fatalf("Run: %v", err)
	}

	want := []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}
	if got := b.j.all(); !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	for _, s := range b.host.States() {
		if s.Status != StatusStopped || s.StartedAt.IsZero() || s.LastError != nil {
			t.Errorf("%s: status %v, started at %v, last error %v; want stopped cleanly", s.Name, s.Status, s.StartedAt, s.LastError)
		}
	}
}

func TestStartTimeout(t *testing.T) {
	tests := []struct {
		name       string
		host, svc  time.Duration
		wantLimits string
	}{
		{name: "host default", host: 50 * time.Millisecond, wantLimits: "start timeout 50ms"},
		{name: "service option", host: time.Hour, svc: 60 * time.Millisecond, wantLimits: "start timeout 60ms"},
	}
	for _, tt := range tests {
		// In a bubble the clock moves only when every goroutine waits, so
		// the time Run takes is the timeout's, however busy the machine.
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := setup(t, Config{StartTimeout: tt.host})
				gate := make(chan struct{})
				b.add("a", Options{})
				b.add("b", Options{StartTimeout: tt.svc}, func(f *fake) { f.startGate = gate })
				b.add("c", Options{})
				t.Cleanup(func() {
					close(gate)
					b.j.wait(t, "start returned b") // the abandoned Start ends
				})

				t0 := time.Now()
				err := b.host.Run(t.Context())
				limit := tt.svc
				if limit == 0 {
					limit = tt.host
				}
				if elapsed := time.Since(t0); elapsed != limit {
					t.Errorf("Run took %v, want the start timeout %v", elapsed, limit)
				}
				if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "start b: deadline exceeded ("+tt.wantLimits+")") {
					t.Fatalf("Run = %v, want a start timeout naming b", err)
				}
				if got, want := b.j.all(), []string{"start a", "start b", "stop a"}; !slices.Equal(got, want) {
					t.Errorf("calls = %q, want %q", got, want)
				}
				if s := b.state(t, "b"); s.Status != StatusFailed || !errors.Is(s.LastError, context.DeadlineExceeded) {
					t.Errorf("b: %v, %v; want failed with a deadline error", s.Status, s.LastError)
				}
			})
		})
	}
}

func TestStartFailureRollsBack(t *testing.T) {
	b := setup(t, Config{})
	b.add("a", Options{})
	b.add("b", Options{})
	b.add("c", Options{}, func(f *fake) { f.startErr = errBoom })
	b.add("d", Options{})

	err := b.host.Run(t.Context())
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "start c: boom") {
		t.Fatalf("Run = %v, want the start error of c", err)
	}
	if got, want := b.j.all(), []string{"start a", "start b", "start c", "stop b", "stop a"}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	if isClosed(b.host.Started()) {
		t.Error("Started closed after a start failure")
	}
	if !isClosed(b.host.Stopping()) || !isClosed(b.host.Stopped()) {
		t.Error("Stopping and Stopped should be closed once Run returned")
	}
	want := map[string]Status{"a": StatusStopped, "b": StatusStopped, "c": StatusFailed, "d": StatusPending}
	for _, s := range b.host.States() {
		if s.Status != want[s.Name] {
			t.Errorf("%s: %v, want %v", s.Name, s.Status, want[s.Name])
		}
	}
}

func TestPanicInStartOrStop(t *testing.T) {
	t.Run("start", func(t *testing.T) {
		b := setup(t, Config{})
		b.add("a", Options{})
		b.add("b", Options{}, func(f *fake) { f.startPanic = "start went wrong" })
		err := b.host.Run(t.Context())
		pe, ok := errors.AsType[*PanicError](err)
		if !ok || pe.Value != "start went wrong" || !strings.Contains(err.Error(), "start b: panic: start went wrong") {
			t.Fatalf("Run = %v, want the panic of b's Start", err)
		}
		if got, want := b.j.all(), []string{"start a", "start b", "stop a"}; !slices.Equal(got, want) {
			t.Errorf("calls = %q, want %q", got, want)
		}
		logs := b.logs.find("service failed to start", "b")
		if len(logs) != 1 || !strings.Contains(logs[0].attrs["stack"].String(), "(*fake).Start") {
			t.Errorf("want one log with the stack of the panic, got %v", logs)
		}
	})
	t.Run("stop", func(t *testing.T) {
		b := setup(t, Config{})
		b.add("a", Options{})
		b.add("b", Options{}, func(f *fake) { f.stopPanic = errBoom })
		b.add("c", Options{})
		errc := b.run(t, t.Context())
		waitClosed(t, b.host.Started(), "started")
		b.host.Stop()
		err := wait(t, errc)
		if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "stop b: panic: boom") {
			t.Fatalf("Run = %v, want the panic of b's Stop", err)
		}
		if got, want := b.j.all(), []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}; !slices.Equal(got, want) {
			t.Errorf("calls = %q, want %q", got, want)
		}
	})
}

func TestStopOverrunningTheBudget(t *testing.T) { synctest.Test(t, testStopOverrunningTheBudget) }

// testStopOverrunningTheBudget runs in a bubble, so the time Run takes
// after Stop is the budget's (and its grace), however busy the machine.
func testStopOverrunningTheBudget(t *testing.T) {
	const budget = 200 * time.Millisecond
	b := setup(t, Config{ShutdownTimeout: budget})
	gate := make(chan struct{})
	b.add("a", Options{})
	b.add("b", Options{}, func(f *fake) { f.stopGate = gate })
	b.add("c", Options{})
	t.Cleanup(func() {
		close(gate)
		b.j.wait(t, "stop returned b")
	})

	errc := b.run(t, t.Context())
	waitClosed(t, b.host.Started(), "started")
	t0 := time.Now()
	b.host.Stop()
	err := wait(t, errc)
	elapsed := time.Since(t0)

	// b is abandoned at its hard limit, which keeps a's reserve out of the
	// budget: Run returns within the budget (exactly measured: the test
	// runs in a bubble).
	if elapsed < budget-lateStopGrace(budget) || elapsed > budget {
		t.Errorf("Run returned %v after Stop, want within the budget %v, at most its reserve %v early", elapsed, budget, lateStopGrace(budget))
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stop b: deadline exceeded") {
		t.Fatalf("Run = %v, want an overrun naming b", err)
	}
	if strings.Contains(err.Error(), "stop a") || strings.Contains(err.Error(), "stop c") {
		t.Errorf("Run = %v, want only b reported", err)
	}
	if got, want := b.j.all(), []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	want := map[string]Status{"a": StatusStopped, "b": StatusFailed, "c": StatusStopped}
	for _, s := range b.host.States() {
		if s.Status != want[s.Name] {
			t.Errorf("%s: %v, want %v", s.Name, s.Status, want[s.Name])
		}
	}
}

func TestConcurrentStop(t *testing.T) {
	b := setup(t, Config{})
	b.add("a", Options{})
	errc := b.run(t, t.Context())
	waitClosed(t, b.host.Started(), "started")

	var wg sync.WaitGroup
	begin := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-begin
			b.host.Stop()
		})
	}
	close(begin)
	wg.Wait()
	if err := wait(t, errc); err != nil {
		t.Fatalf("Run: %v", err)
	}
	b.host.Stop() // after Run: still harmless
	if got, want := b.j.all(), []string{"start a", "stop a"}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
}

func TestStopBeforeRun(t *testing.T) {
	b := setup(t, Config{})
	b.add("a", Options{})
	b.host.Stop()
	b.host.Stop()

	if err := b.host.Run(t.Context()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := b.j.all(); len(got) != 0 {
		t.Errorf("calls = %q, want none", got)
	}
	if isClosed(b.host.Started()) || !isClosed(b.host.Stopping()) || !isClosed(b.host.Stopped()) {
		t.Error("want Started open, Stopping and Stopped closed")
	}
	if s := b.state(t, "a"); s.Status != StatusPending {
		t.Errorf("a: %v, want pending", s.Status)
	}
}

func TestContextCancellation(t *testing.T) {
	t.Run("while running", func(t *testing.T) {
		b := setup(t, Config{})
		b.add("a", Options{})
		b.add("b", Options{})
		ctx, cancel := context.WithCancel(t.Context())
		errc := b.run(t, ctx)
		waitClosed(t, b.host.Started(), "started")
		cancel()
		if err := wait(t, errc); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got, want := b.j.all(), []string{"start a", "start b", "stop b", "stop a"}; !slices.Equal(got, want) {
			t.Errorf("calls = %q, want %q", got, want)
		}
	})
	t.Run("while starting", func(t *testing.T) {
		b := setup(t, Config{})
		b.add("a", Options{})
		entered := make(chan struct{})
		b.host.Add("b", Funcs(func(ctx context.Context) error {
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		}, nil), Options{})
		b.add("c", Options{})
		ctx, cancel := context.WithCancel(t.Context())
		errc := b.run(t, ctx)
		waitClosed(t, entered, "b starting")
		cancel()
		if err := wait(t, errc); err != nil {
			t.Fatalf("Run = %v, want nil for a cancelled start", err)
		}
		if got, want := b.j.all(), []string{"start a", "stop a"}; !slices.Equal(got, want) {
			t.Errorf("calls = %q, want %q", got, want)
		}
		if s := b.state(t, "b"); s.Status != StatusStopped || s.LastError != nil {
			t.Errorf("b: %v, %v; want stopped without error", s.Status, s.LastError)
		}
	})
}

func TestStateTransitions(t *testing.T) {
	b := setup(t, Config{})
	startGate, stopGate := make(chan struct{}), make(chan struct{})
	b.add("a", Options{}, func(f *fake) { f.startGate, f.stopGate = startGate, stopGate })
	assertStatus := func(want Status) State {
		t.Helper()
		s := b.state(t, "a")
		if s.Status != want {
			t.Fatalf("status = %v, want %v", s.Status, want)
		}
		return s
	}

	added := assertStatus(StatusPending)
	errc := b.run(t, t.Context())
	b.j.wait(t, "start a")
	starting := assertStatus(StatusStarting)
	if !starting.Since.After(added.Since) && !starting.Since.Equal(added.Since) {
		t.Errorf("Since went back from %v to %v", added.Since, starting.Since)
	}
	if !starting.StartedAt.IsZero() {
		t.Error("StartedAt set before the start finished")
	}

	close(startGate)
	waitClosed(t, b.host.Started(), "started")
	running := assertStatus(StatusRunning)
	if running.StartedAt.IsZero() || running.StartedAt.Before(starting.Since) {
		t.Errorf("StartedAt = %v, want after %v", running.StartedAt, starting.Since)
	}
	if again := b.host.States()[0]; !again.Since.Equal(running.Since) {
		t.Error("Since changed without a status change")
	}

	b.host.Stop()
	b.j.wait(t, "stop a")
	assertStatus(StatusStopping)
	if !isClosed(b.host.Stopping()) || isClosed(b.host.Stopped()) {
		t.Error("while stopping: want Stopping closed and Stopped open")
	}
	close(stopGate)
	if err := wait(t, errc); err != nil {
		t.Fatalf("Run: %v", err)
	}
	stopped := assertStatus(StatusStopped)
	if stopped.StartedAt != running.StartedAt {
		t.Error("StartedAt changed by stopping")
	}
}

func TestRunTwice(t *testing.T) {
	b := setup(t, Config{})
	b.host.Stop()
	if err := b.host.Run(t.Context()); err != nil {
		t.Fatalf("first Run: %v", err)
	}
	if err := b.host.Run(t.Context()); err == nil {
		t.Fatal("second Run returned nil, want an error")
	}
}

func TestAddPanicsOnMisuse(t *testing.T) {
	tests := []struct {
		name string
		add  func(h *Host)
	}{
		{"empty name", func(h *Host) { h.Add("", Funcs(nil, nil), Options{}) }},
		{"nil service", func(h *Host) { h.Add("a", nil, Options{}) }},
		{"duplicate name", func(h *Host) {
			h.Add("a", Funcs(nil, nil), Options{})
			h.Add("a", Funcs(nil, nil), Options{})
		}},
		{"unknown policy", func(h *Host) { h.Add("a", Funcs(nil, nil), Options{Policy: Policy(9)}) }},
		{"negative timeout", func(h *Host) { h.Add("a", Funcs(nil, nil), Options{StartTimeout: -1}) }},
		{"backoff min above max", func(h *Host) {
			h.Add("a", Funcs(nil, nil), Options{BackoffMin: time.Second, BackoffMax: time.Millisecond})
		}},
		{"after Run", func(h *Host) {
			h.Stop()
			_ = h.Run(context.Background())
			h.Add("a", Funcs(nil, nil), Options{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Add did not panic")
				}
			}()
			tt.add(New(Config{}))
		})
	}
}

func TestStatusAndPolicyStrings(t *testing.T) {
	want := []string{"pending", "starting", "running", "restarting", "stopping", "stopped", "failed"}
	for i, w := range want {
		if got := Status(i).String(); got != w {
			t.Errorf("Status(%d) = %q, want %q", i, got, w)
		}
	}
	if got := Status(42).String(); got != "Status(42)" {
		t.Errorf("unknown status = %q", got)
	}
	if got := Restart.String(); got != "restart" {
		t.Errorf("Restart = %q", got)
	}
}
