package http

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestRequestDeadlineEndsAfterItsBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newRequestDeadline(context.Background(), 10*time.Second)
		defer d.release()
		child, cancel := context.WithCancel(d)
		defer cancel()

		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		if err := d.Err(); err != nil {
			t.Fatalf("Err before the budget ran out = %v", err)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if err := d.Err(); err != context.DeadlineExceeded {
			t.Fatalf("Err after the budget = %v, want context.DeadlineExceeded", err)
		}
		<-child.Done()
		if err := child.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("derived context's Err = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestRequestDeadlineDoesNotCountTurnWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newRequestDeadline(context.Background(), 10*time.Second)
		defer d.release()

		time.Sleep(4 * time.Second)
		resume := d.WaitForTurn()
		time.Sleep(time.Minute) // queued behind a burst
		synctest.Wait()
		if err := d.Err(); err != nil {
			t.Fatalf("Err after a minute paused = %v, want nil", err)
		}
		resume()
		time.Sleep(6*time.Second - time.Millisecond)
		synctest.Wait()
		if err := d.Err(); err != nil {
			t.Fatalf("Err just before 10 s of work = %v, want nil", err)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if err := d.Err(); err != context.DeadlineExceeded {
			t.Fatalf("Err after 10 s of work = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestRequestDeadlineFollowsItsParent(t *testing.T) {
	parent, cancel := context.WithCancel(t.Context())
	d := newRequestDeadline(parent, time.Hour)
	defer d.release()
	resume := d.WaitForTurn()
	cancel() // the client went away while the request was queued
	<-d.Done()
	if err := d.Err(); err != context.Canceled {
		t.Errorf("Err after the parent ended = %v, want context.Canceled", err)
	}
	resume()
}
