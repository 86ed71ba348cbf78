package mail

import (
	"slices"
	"sync"
	"time"
)

// wakeGrain groups retry times: retries due within one grain share one
// wake-up.
const wakeGrain = 100 * time.Millisecond

// waker calls kick when each retry scheduled through add is due, so that
// a sweep leases it on time instead of at the next periodic sweep, up to
// SweepEvery later. It holds one timer, for the earliest time.
type waker struct {
	kick func()

	mu      sync.Mutex
	due     []time.Time // sorted, distinct, rounded up to wakeGrain
	timer   *time.Timer
	stopped bool
}

func newWaker(kick func()) *waker { return &waker{kick: kick} }

// add asks for a kick in d.
func (w *waker) add(d time.Duration) {
	at := time.Now().Add(d + wakeGrain - 1).Truncate(wakeGrain)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	i, found := slices.BinarySearchFunc(w.due, at, time.Time.Compare)
	if found {
		return
	}
	w.due = slices.Insert(w.due, i, at)
	if i == 0 {
		w.armLocked()
	}
}

// armLocked sets the timer for the earliest time.
func (w *waker) armLocked() {
	if w.timer != nil {
		w.timer.Stop()
	}
	if len(w.due) == 0 {
		return
	}
	w.timer = time.AfterFunc(time.Until(w.due[0]), w.fire)
}

func (w *waker) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	now := time.Now()
	n := 0
	for n < len(w.due) && !w.due[n].After(now) {
		n++
	}
	w.due = slices.Delete(w.due, 0, n)
	w.kick()
	w.armLocked()
}

// stop cancels every wake-up to come.
func (w *waker) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.due = nil
}
