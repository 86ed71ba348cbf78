package hosted

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// failAfter returns a background func that fails with errBoom once release
// is closed.
func failAfter(release <-chan struct{}) func(context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-release:
			return errBoom
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func TestBackgroundPanicStopsHost(t *testing.T) {
	b := setup(t, Config{})
	b.add("a", Options{})
	b.host.Add("worker", Background(func(context.Context) error { panic("kaboom") }), Options{})

	err := wait(t, b.run(t, t.Context()))
	pe, ok := errors.AsType[*PanicError](err)
	if !ok || pe.Value != "kaboom" || !strings.Contains(err.Error(), "service worker failed: panic: kaboom") {
		t.Fatalf("Run = %v, want the panic of worker", err)
	}
	logs := b.logs.find("service failed", "worker")
	if len(logs) != 1 || !strings.Contains(logs[0].attrs["stack"].String(), "TestBackgroundPanicStopsHost") {
		t.Errorf("want the failure logged with the stack, got %v", logs)
	}
	if got, want := b.j.all(), []string{"start a", "stop a"}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	if s := b.state(t, "worker"); s.Status != StatusFailed || !errors.As(s.LastError, &pe) {
		t.Errorf("worker: %v, %v; want failed with the panic", s.Status, s.LastError)
	}
}

func TestPolicyStopHost(t *testing.T) {
	b := setup(t, Config{})
	release := make(chan struct{})
	b.add("a", Options{})
	b.host.Add("worker", Background(failAfter(release)), Options{Policy: StopHost})
	b.add("c", Options{})

	errc := b.run(t, t.Context())
	waitClosed(t, b.host.Started(), "started")
	close(release)
	err := wait(t, errc)
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "service worker failed: boom") {
		t.Fatalf("Run = %v, want the failure of worker", err)
	}
	if got, want := b.j.all(), []string{"start a", "start c", "stop c", "stop a"}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
}

func TestPolicyIgnore(t *testing.T) {
	b := setup(t, Config{})
	release := make(chan struct{})
	b.add("a", Options{})
	b.host.Add("worker", Background(failAfter(release)), Options{Policy: Ignore})

	errc := b.run(t, t.Context())
	waitClosed(t, b.host.Started(), "started")
	close(release)
	b.logs.wait(t, "service failed", "worker", 1)

	if isClosed(b.host.Stopping()) {
		t.Fatal("host stopping after an ignored failure")
	}
	if s := b.state(t, "worker"); s.Status != StatusFailed || !errors.Is(s.LastError, errBoom) {
		t.Errorf("worker: %v, %v; want failed with boom", s.Status, s.LastError)
	}
	if s := b.state(t, "a"); s.Status != StatusRunning {
		t.Errorf("a: %v, want running", s.Status)
	}
	b.host.Stop()
	if err := wait(t, errc); err != nil {
		t.Fatalf("Run = %v, want nil: the failure was ignored", err)
	}
	if s := b.state(t, "worker"); s.Status != StatusFailed {
		t.Errorf("worker after stop: %v, want it still marked failed", s.Status)
	}
}

func TestPolicyRestart(t *testing.T) {
	b := setup(t, Config{})
	var runs atomic.Int32
	b.host.Add("worker", Background(func(ctx context.Context) error {
		if n := runs.Add(1); n <= 3 {
			return fmt.Errorf("run %d: %w", n, errBoom)
		}
		<-ctx.Done()
		return ctx.Err()
	}), Options{Policy: Restart, BackoffMin: time.Millisecond, BackoffMax: 4 * time.Millisecond})

	errc := b.run(t, t.Context())
	b.logs.wait(t, "service started", "worker", 4)

	s := b.state(t, "worker")
	if s.Status != StatusRunning || s.Restarts != 3 || !errors.Is(s.LastError, errBoom) {
		t.Errorf("worker: %v, %d restarts, %v; want running after 3 restarts", s.Status, s.Restarts, s.LastError)
	}
	restarts := b.logs.find("service restarting", "worker")
	if len(restarts) != 3 {
		t.Fatalf("%d restart logs, want 3", len(restarts))
	}
	var prev time.Duration
	for i, r := range restarts {
		d := r.attrs["delay"].Duration()
		if d < time.Millisecond || d > 4*time.Millisecond || d < prev {
			t.Errorf("restart %d: delay %v, want within [1ms, 4ms] and not below %v", i+1, d, prev)
		}
		prev = d
	}
	if first := restarts[0].attrs["delay"].Duration(); first != time.Millisecond {
		t.Errorf("first delay %v, want BackoffMin", first)
	}

	b.host.Stop()
	if err := wait(t, errc); err != nil {
		t.Fatalf("Run = %v, want nil: the worker recovered", err)
	}
}

func TestRestartStormEscalates(t *testing.T) {
	b := setup(t, Config{})
	var runs atomic.Int32
	b.add("a", Options{})
	b.host.Add("worker", Background(func(context.Context) error {
		runs.Add(1)
		return errBoom
	}), Options{Policy: Restart, MaxRestarts: 3, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond})

	err := wait(t, b.run(t, t.Context()))
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "service worker failed after 3 restarts") {
		t.Fatalf("Run = %v, want the escalated failure of worker", err)
	}
	if n := runs.Load(); n != 4 {
		t.Errorf("worker ran %d times, want 4", n)
	}
	if s := b.state(t, "worker"); s.Status != StatusFailed || s.Restarts != 3 {
		t.Errorf("worker: %v after %d restarts, want failed after 3", s.Status, s.Restarts)
	}
	if got, want := b.j.all(), []string{"start a", "stop a"}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
}

func TestStopDuringRestartBackoff(t *testing.T) { synctest.Test(t, testStopDuringRestartBackoff) }

// testStopDuringRestartBackoff runs in a bubble: Stop must end the hour's
// backoff at once, and the bubble's clock shows whether any of it passed.
func testStopDuringRestartBackoff(t *testing.T) {
	b := setup(t, Config{})
	b.host.Add("worker", Background(func(context.Context) error { return errBoom }),
		Options{Policy: Restart, BackoffMin: time.Hour})

	errc := b.run(t, t.Context())
	b.logs.wait(t, "service restarting", "worker", 1)
	if s := b.state(t, "worker"); s.Status != StatusRestarting || s.Restarts != 1 {
		t.Errorf("worker: %v, %d restarts; want restarting, 1", s.Status, s.Restarts)
	}
	t0 := time.Now()
	b.host.Stop()
	if err := wait(t, errc); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if elapsed := time.Since(t0); elapsed != 0 {
		t.Errorf("Run took %v to stop during a backoff, want no time", elapsed)
	}
	if s := b.state(t, "worker"); s.Status != StatusStopped {
		t.Errorf("worker: %v, want stopped", s.Status)
	}
}

// server is a Service that reports failures like an HTTP server whose Serve
// returned.
type server struct {
	fake
	failed chan error
}

func (s *server) Failed() <-chan error { return s.failed }

func TestFailerReportsFailure(t *testing.T) {
	b := setup(t, Config{})
	b.add("a", Options{})
	srv := &server{fake: fake{name: "http", j: b.j}, failed: make(chan error, 1)}
	b.host.Add("http", srv, Options{})

	errc := b.run(t, t.Context())
	waitClosed(t, b.host.Started(), "started")
	srv.failed <- errBoom
	err := wait(t, errc)
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "service http failed: boom") {
		t.Fatalf("Run = %v, want the failure of http", err)
	}
	if got, want := b.j.all(), []string{"start a", "start http", "stop http", "stop a"}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
}

func TestBackgroundFinishing(t *testing.T) {
	b := setup(t, Config{})
	b.add("a", Options{})
	b.host.Add("once", Background(func(context.Context) error { return nil }), Options{})

	errc := b.run(t, t.Context())
	b.logs.wait(t, "service finished", "once", 1)
	if s := b.state(t, "once"); s.Status != StatusStopped || s.LastError != nil {
		t.Errorf("once: %v, %v; want stopped cleanly", s.Status, s.LastError)
	}
	if isClosed(b.host.Stopping()) {
		t.Fatal("a finished background func stopped the host")
	}
	b.host.Stop()
	if err := wait(t, errc); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestBackgroundErrorWhileStopping(t *testing.T) {
	b := setup(t, Config{})
	b.host.Add("worker", Background(func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("flush: %w", errBoom)
	}), Options{})

	errc := b.run(t, t.Context())
	waitClosed(t, b.host.Started(), "started")
	b.host.Stop()
	err := wait(t, errc)
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "stop worker: flush: boom") {
		t.Fatalf("Run = %v, want the error the worker returned when stopped", err)
	}
}
