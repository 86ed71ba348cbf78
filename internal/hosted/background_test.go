package hosted

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBackgroundLifecycle(t *testing.T) {
	ctx := t.Context()
	entered := make(chan struct{}, 2)
	svc := Background(func(ctx context.Context) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if svc.(Failer).Failed() != nil {
		t.Error("Failed before Start should be nil")
	}

	startCtx, cancel := context.WithCancel(ctx)
	if err := svc.Start(startCtx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	cancel() // the end of Start's context must not end the func
	<-entered
	if err := svc.Start(ctx); err == nil {
		t.Error("second Start while running succeeded")
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	if err := svc.Start(ctx); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	<-entered
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestBackgroundStopIsBoundedByItsContext(t *testing.T) {
	release := make(chan struct{})
	svc := Background(func(context.Context) error {
		<-release // ignores its context
		return nil
	})
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := svc.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want a deadline error", err)
	}
	close(release)
	if err := svc.Stop(t.Context()); err != nil {
		t.Fatalf("Stop after the func returned: %v", err)
	}
}

func TestBackgroundUnreceivedFailureGoesToStop(t *testing.T) {
	svc := Background(func(context.Context) error { return errBoom })
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	// Nobody watches Failed: the failure must not be lost.
	select {
	case <-svc.(*background).cur.done:
	case <-time.After(patience):
		t.Fatal("func did not return")
	}
	if err := svc.Stop(t.Context()); !errors.Is(err, errBoom) {
		t.Fatalf("Stop = %v, want the unreceived failure", err)
	}
}
