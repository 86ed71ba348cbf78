// Package waitfor lets a test wait on the condition it is about, with a
// deadline, instead of sleeping: it polls the condition until it holds or
// the deadline passes, then fails the test with what was still missing.
package waitfor

import (
	"testing"
	"time"
)

// interval is how often a condition is checked: short enough that a test
// does not wait noticeably past the moment the condition holds, long
// enough not to load a busy machine.
const interval = 10 * time.Millisecond

// Until calls cond until it returns nil, and fails tb (Fatal) if it still
// returns an error after timeout; the failure message carries the last
// error, so cond should say what is still missing ("3 of 25 addresses got
// no mail: a@x, b@x, c@x"). Deadlines should be generous: a loaded 2-core
// machine is slow, and a condition that holds returns at once anyway.
func Until(tb testing.TB, timeout time.Duration, cond func() error) {
	tb.Helper()
	if err := Wait(timeout, cond); err != nil {
		tb.Fatalf("still waiting after %s: %v", timeout, err)
	}
}

// True is Until for a condition with no detail: what names it in the
// failure message.
func True(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if err := Wait(timeout, func() error {
		if cond() {
			return nil
		}
		return errString(what)
	}); err != nil {
		tb.Fatalf("still waiting after %s for %s", timeout, what)
	}
}

// Wait is Until without a test: it returns nil once cond does, or cond's
// last error once timeout has passed. For helpers that report on their own.
func Wait(timeout time.Duration, cond func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
