package http

import (
	"context"
	"sync"
	"time"

	"signup/internal/account"
)

// requestDeadline is a request's context with a time budget that stops
// running while the request waits for a password-hashing turn: a signup
// queued behind a burst is not a slow one, and the hasher refuses at once
// what would wait too long (see account.BusyError). Past the budget the
// context ends with context.DeadlineExceeded, as context.WithTimeout's
// does.
type requestDeadline struct {
	parent context.Context
	inner  context.Context // ends with the parent or the budget
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	timer  *time.Timer
	left   time.Duration // budget left, kept up to date while paused
	since  time.Time     // when the timer was last (re)started
	paused int
}

// withRequestDeadline returns a context that ends after budget, not
// counting account turn waits, and the function that releases it.
func withRequestDeadline(parent context.Context, budget time.Duration) (context.Context, func()) {
	d := newRequestDeadline(parent, budget)
	return account.WithTurnWait(d, d.pause), d.release
}

func newRequestDeadline(parent context.Context, budget time.Duration) *requestDeadline {
	inner, cancel := context.WithCancelCause(parent)
	d := &requestDeadline{parent: parent, inner: inner, cancel: cancel, left: budget, since: time.Now()}
	d.timer = time.AfterFunc(budget, func() { cancel(context.DeadlineExceeded) })
	return d
}

// release stops the clock and ends the context.
func (d *requestDeadline) release() {
	d.timer.Stop()
	d.cancel(context.Canceled)
}

// pause stops the budget's clock until the returned function is called.
func (d *requestDeadline) pause() (resume func()) {
	d.mu.Lock()
	if d.paused == 0 && d.timer.Stop() {
		d.left -= time.Since(d.since)
	}
	d.paused++
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.paused--
		if d.paused == 0 && d.inner.Err() == nil {
			d.since = time.Now()
			d.timer.Reset(max(d.left, 0))
		}
	}
}

// Deadline reports none: the deadline moves while the request waits.
func (d *requestDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done is closed when the parent ends or the budget runs out.
func (d *requestDeadline) Done() <-chan struct{} { return d.inner.Done() }

// Err is context.DeadlineExceeded once the budget has run out, else the
// parent's error.
func (d *requestDeadline) Err() error {
	err := d.inner.Err()
	if err != nil && context.Cause(d.inner) == context.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return err
}

// Value asks the parent: the inner context must not be found as a
// cancelCtx, or contexts derived from this one would take its error
// (context.Canceled) rather than Err's.
func (d *requestDeadline) Value(key any) any { return d.parent.Value(key) }

// AfterFunc lets contexts derived from this one follow it without a
// goroutine each.
func (d *requestDeadline) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(d.inner, f)
}
