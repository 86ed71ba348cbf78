package http_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"signup/internal/timingtest"
)

// Timing tests: the answer to a form that takes an address must take as
// long for an unknown address as for an unconfirmed or a confirmed one.
// 100 interleaved samples each; medians within 10% of each other (or, on a
// machine so noisy that the first arm and a copy of it measured alongside
// differ more, within twice that), and no pair told apart by a
// Mann–Whitney U test at p < 0.01. Arms told apart are measured again, and
// the test fails when they are told apart twice: a real difference shows
// every time (the "catches 1 ms" check measures once), while noise on a
// loaded machine rarely does twice in a row (seen under stress-ng: equal
// arms 12.5% apart once, then 9.2% and 9.4%).
const (
	timingRounds    = 100
	timingWarmup    = 5
	timingTolerance = 0.10
	timingAlpha     = 0.01
	// timingBest: each sample is the fastest of this many requests in a
	// row (see timingtest.Measure).
	timingBest = 10
)

// timingBundle is a site with a confirmed and an unconfirmed account.
func timingBundle(t *testing.T) *bundle {
	t.Helper()
	// Room for every email two measurements of four arms queue.
	b := setup(t, func(o *options) { o.queue = 2 * 4 * (timingWarmup + timingRounds) * timingBest * 3 })
	b.confirmed(t, "confirmed@example.com", password)
	b.signup(t, b.client(t), "pending@example.com", password)
	return b
}

// postArm times one POST of form to path, expecting status.
func postArm(t *testing.T, b *bundle, name, path string, status int, form url.Values) timingtest.Arm {
	c := b.client(t)
	return timingtest.Arm{Name: name, Run: func() {
		if res := b.post(t, c, path, form); res.status != status {
			t.Errorf("%s %s: status %d, want %d", name, path, res.status, status)
		}
	}}
}

// addressArms are the three kinds of address, posted to path.
func addressArms(t *testing.T, b *bundle, path string, status int, extra url.Values) []timingtest.Arm {
	var arms []timingtest.Arm
	for _, a := range []struct{ name, email string }{
		{"unknown", "nobody@example.com"}, {"unconfirmed", "pending@example.com"}, {"confirmed", "confirmed@example.com"},
	} {
		form := url.Values{"email": {a.email}}
		for k, v := range extra {
			form[k] = v
		}
		arms = append(arms, postArm(t, b, a.name, path, status, form))
	}
	return arms
}

// measure times arms, moving the clock past the daily mail limit before
// each round so that every request that can queue an email does: the
// comparison includes the work of queueing. A copy of the first arm is
// measured with them, as a control: the gap between the two medians is
// what the machine's noise alone makes, and the tolerance on the arms'
// medians is the larger of timingTolerance and twice that gap.
func measure(t *testing.T, b *bundle, arms ...timingtest.Arm) (c timingtest.Comparison, tolerance float64) {
	t.Helper()
	control := arms[0]
	control.Name = arms[0].Name + " (control)"
	s := timingtest.Measure(timingWarmup, timingRounds, timingBest, func() { b.clock.Add(25 * time.Hour) }, append(arms, control)...)
	noise := timingtest.Compare(timingtest.Samples{arms[0].Name: s[arms[0].Name], control.Name: s[control.Name]})
	delete(s, control.Name)
	c = timingtest.Compare(s)
	tolerance = max(timingTolerance, 2*noise.Spread)
	t.Logf("%s; the first arm against a copy of itself: %.1f%% apart, so a tolerance of %.1f%%", c, 100*noise.Spread, 100*tolerance)
	return c, tolerance
}

// expectIndistinguishable fails t when arms are told apart in two
// measurements in a row.
func expectIndistinguishable(t *testing.T, b *bundle, arms ...timingtest.Arm) {
	t.Helper()
	c, tolerance := measure(t, b, arms...)
	first := c.Indistinguishable(tolerance, timingAlpha)
	if first == nil {
		return
	}
	t.Logf("%v; measuring again", first)
	c, tolerance = measure(t, b, arms...)
	if err := c.Indistinguishable(tolerance, timingAlpha); err != nil {
		t.Errorf("told apart twice in a row: %v; then %v", first, err)
	}
}

func TestForgotPasswordTiming(t *testing.T) {
	b := timingBundle(t)
	arms := addressArms(t, b, "/password/forgot", http.StatusOK, nil)
	expectIndistinguishable(t, b, arms...)
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE kind = 'reset'`); n < 2*(timingWarmup+timingRounds) {
		t.Errorf("%d reset emails queued; the measured requests did not all queue one", n)
	}

	// The same measurement tells apart an arm that does 1 ms more work.
	t.Run("catches 1 ms", func(t *testing.T) {
		slower := arms[0]
		slower.Name = "unknown + 1 ms"
		run := arms[0].Run
		slower.Run = func() { run(); timingtest.Spin(time.Millisecond) }
		c, tolerance := measure(t, b, arms[0], slower)
		if err := c.Indistinguishable(tolerance, timingAlpha); err == nil {
			t.Errorf("a 1 ms difference went unnoticed: %s", c)
		}
	})
}

func TestResendTiming(t *testing.T) {
	b := timingBundle(t)
	expectIndistinguishable(t, b, addressArms(t, b, "/confirm/resend", http.StatusOK, nil)...)
}

// A signup for a new, an unconfirmed and a confirmed address: each hashes
// the password and runs one statement. Cheap hashing parameters keep the
// database work, where a difference would hide, from drowning in hashing.
func TestSignupTiming(t *testing.T) {
	b := timingBundle(t)
	fresh := 0
	newArm := timingtest.Arm{Name: "new", Run: func() {
		fresh++
		form := url.Values{"email": {"fresh" + strconv.Itoa(fresh) + "@example.com"}, "password": {password}}
		if res := b.post(t, b.client(t), "/signup", form); res.status != http.StatusSeeOther {
			t.Errorf("new signup: status %d", res.status)
		}
	}}
	arms := addressArms(t, b, "/signup", http.StatusSeeOther, url.Values{"password": {password}})
	expectIndistinguishable(t, b, newArm, arms[1], arms[2])
}
