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
//
// The timer and the cancellable context behind it are made when something
// first asks whether the request is done (the database, the hasher); a
// request that never waits on anything, such as a blank form, pays for
// neither.
type requestDeadline struct {
	parent context.Context
	budget time.Duration

	mu     sync.Mutex
	since  time.Time     // when the clock last (re)started
	used   time.Duration // budget used before since
	paused int
	inner  context.Context // ends with the parent or the budget; nil until needed
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

// withRequestDeadline returns a context that ends after budget, not
// counting account turn waits, and the function that releases it.
func withRequestDeadline(parent context.Context, budget time.Duration) (context.Context, func()) {
	d := newRequestDeadline(parent, budget)
	return d, d.release
}

func newRequestDeadline(parent context.Context, budget time.Duration) *requestDeadline {
	return &requestDeadline{parent: parent, budget: budget, since: time.Now()}
}

// started returns the inner context, making it and its timer if needed.
// Call with mu held.
func (d *requestDeadline) started() context.Context {
	if d.inner == nil {
		d.inner, d.cancel = context.WithCancelCause(d.parent)
		if d.paused == 0 {
			d.arm(d.budget - d.used - time.Since(d.since))
		}
	}
	return d.inner
}

// arm (re)starts the timer for what is left of the budget. Call with mu
// held, the inner context made.
func (d *requestDeadline) arm(left time.Duration) {
	left = max(left, 0)
	if d.timer == nil {
		cancel := d.cancel
		d.timer = time.AfterFunc(left, func() { cancel(context.DeadlineExceeded) })
		return
	}
	d.timer.Reset(left)
}

// release stops the clock and ends the context.
func (d *requestDeadline) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.cancel != nil {
		d.cancel(context.Canceled)
	}
}

// WaitForTurn stops the budget's clock until the returned function is
// called: an account.TurnWaiter.
func (d *requestDeadline) WaitForTurn() (resume func()) {
	d.mu.Lock()
	if d.paused == 0 {
		d.used += time.Since(d.since)
		if d.timer != nil {
			d.timer.Stop()
		}
	}
	d.paused++
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.paused--
		if d.paused == 0 {
			d.since = time.Now()
			if d.inner != nil && d.inner.Err() == nil {
				d.arm(d.budget - d.used)
			}
		}
	}
}

// Deadline reports none: the deadline moves while the request waits.
func (d *requestDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done is closed when the parent ends or the budget runs out.
func (d *requestDeadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started().Done()
}

// Err is context.DeadlineExceeded once the budget has run out, else the
// parent's error.
func (d *requestDeadline) Err() error {
	d.mu.Lock()
	inner := d.started()
	d.mu.Unlock()
	err := inner.Err()
	if err != nil && context.Cause(inner) == context.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return err
}

// Value asks the parent: the inner context must not be found as a
// cancelCtx, or contexts derived from this one would take its error
// (context.Canceled) rather than Err's.
// It answers account.TurnWaitKey itself, so that the hasher finds it
// without a context.WithValue for each request.
func (d *requestDeadline) Value(key any) any {
	if _, ok := key.(account.TurnWaitKey); ok {
		return d
	}
	return d.parent.Value(key)
}

// AfterFunc lets contexts derived from this one follow it without a
// goroutine each.
func (d *requestDeadline) AfterFunc(f func()) (stop func() bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return context.AfterFunc(d.started(), f)
}
