package waitfor

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	err := Wait(time.Minute, func() error {
		if calls.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

func TestWaitReturnsTheLastErrorAtTheDeadline(t *testing.T) {
	var calls atomic.Int32
	err := Wait(30*time.Millisecond, func() error {
		calls.Add(1)
		return errors.New("still missing: x")
	})
	if err == nil || err.Error() != "still missing: x" {
		t.Fatalf("Wait = %v, want the condition's last error", err)
	}
	if calls.Load() < 2 {
		t.Fatalf("cond called %d times, want it polled", calls.Load())
	}
}
