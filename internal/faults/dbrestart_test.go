package faults_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"signup/internal/devmail"
	"signup/internal/e2e"
	appmail "signup/internal/mail"
	"signup/internal/waitfor"
)

// probe is one signup's full answer.
type probe struct {
	status     int
	retryAfter string
	body       string
	took       time.Duration
	err        error
}

func probeSignup(c *e2e.Client, base, email string) probe {
	req, err := http.NewRequest("POST", base+"/signup", strings.NewReader(signupForm(email).Encode()))
	if err != nil {
		return probe{err: err}
	}
	req.Header.Set("Content-Type", formType)
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	start := time.Now()
	res, err := c.HTTP.Do(req)
	if err != nil {
		return probe{err: err, took: time.Since(start)}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return probe{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), body: string(b), took: time.Since(start), err: err}
}

// waitReadiness polls /readyz until it answers want, and returns how long
// that took; it fails the test after timeout. Polling is how a load
// balancer sees readiness too.
func waitReadiness(t *testing.T, base string, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	hc := &http.Client{Timeout: time.Second}
	waitfor.Until(t, timeout, func() error {
		res, err := hc.Get(base + "/readyz")
		if err != nil {
			return fmt.Errorf("/readyz: %w", err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			return fmt.Errorf("/readyz answers %d, want %d", res.StatusCode, want)
		}
		return nil
	})
	return time.Since(start)
}

// TestDatabaseRestart stops a private PostgreSQL under a steady signup load
// and starts it again. The process stays up; /readyz turns false, then
// true again; signups during the outage get a prompt 503 page with
// Retry-After (no hang, no 500); every signup answered 303, before or after,
// gets its confirmation. REQUEST_TIMEOUT is long here (19 s, with a 10 s
// HASH_QUEUE_WAIT: together under the 30 s allowed), so a signup that
// waited for the database instead of being refused at once cannot pass for
// a prompt answer, however slow the machine.
func TestDatabaseRestart(t *testing.T) {
	t.Parallel()
	const requestTimeout = 19 * time.Second
	pg := newCluster(t)
	mail := startMail(t, devmail.Faults{})
	p := e2e.Start(t, fastBinary, webEnv(pg.url(), mail,
		"REQUEST_TIMEOUT", requestTimeout.String(), "HASH_QUEUE_WAIT", "10s"))
	base := p.URL()
	e2e.WaitReady(t, base, 30*time.Second)
	c := e2e.NewClient()

	// A steady load throughout, from its own clients.
	loadCtx, stopLoad := context.WithCancel(t.Context())
	defer stopLoad()
	loaded := make(chan []outcome, 1)
	go func() { loaded <- pacedSignups(loadCtx, e2e.NewClient(), base, "restart", 5, 2*time.Minute) }()
	first := make([]string, 10)
	for i := range first {
		first[i] = fmt.Sprintf("restart%04d@example.com", i)
	}
	if d := waitConfirmations(t, mail, first, 30*time.Second); len(d.missing) > 0 {
		t.Fatalf("the load's first signups got no mail: %v", d.missing)
	}

	pg.stop()
	notReady := waitReadiness(t, base, http.StatusServiceUnavailable, 30*time.Second)
	// The database stays down while 20 signups are tried, 5 a second.
	var during latencies
	tick := time.NewTicker(200 * time.Millisecond)
	for i := range 20 {
		pr := probeSignup(c, base, fmt.Sprintf("during-outage%02d@example.com", i))
		during = append(during, pr.took)
		switch {
		case pr.err != nil:
			t.Errorf("signup with the database down: %v after %v", pr.err, pr.took)
		case pr.status != http.StatusServiceUnavailable || pr.retryAfter == "" || !strings.Contains(pr.body, "Temporarily unavailable"):
			t.Errorf("signup with the database down: status %d, Retry-After %q, page %.200q", pr.status, pr.retryAfter, pr.body)
		}
		<-tick.C
	}
	tick.Stop()
	if p.Exited() {
		t.Fatal("web exited when the database went away")
	}

	pg.start()
	restarted := time.Now()
	ready := waitReadiness(t, base, http.StatusOK, 30*time.Second)
	after := pacedSignups(t.Context(), c, base, "after-restart", 5, 2*time.Second)
	if ok := answered(after); len(ok) != len(after) {
		t.Errorf("after the restart: %s", tally(after))
	}
	stopLoad()
	outs := <-loaded
	if p.Exited() {
		t.Fatal("web exited after the database came back")
	}

	var took latencies
	for _, o := range outs {
		took = append(took, o.took)
		if o.err != nil || (o.status != http.StatusSeeOther && o.status != http.StatusServiceUnavailable) {
			t.Errorf("signup %s under the restart: status %d, %v", o.email, o.status, o.err)
		}
	}
	db := openDB(t, pg.url())
	want := union(answered(outs), answered(after), accountEmails(t, db))
	d := waitConfirmations(t, mail, want, 60*time.Second)
	counts := waitOutboxSettled(t, db, 30*time.Second)

	t.Logf("database stopped: /readyz false after %v; signups meanwhile answered 503 (%s); started again: /readyz true %v later",
		notReady.Round(time.Millisecond), during, ready.Round(time.Millisecond))
	t.Logf("background load of %d signups at 5/s: %s; answers %s", len(outs), took, tally(outs))
	t.Logf("lost %d of %d committed signups, duplicates %d; all mail in %v after the database came back (2 s of load after it included); outbox %+v",
		len(d.missing), len(want), d.duplicates, time.Since(restarted).Round(time.Millisecond), counts)
	// Not a hang: refused at once, but for the password hash each signup
	// computes first, on a machine that may be busy; one that waited for
	// the database would have taken the whole REQUEST_TIMEOUT (or hit the
	// client's 30 s timeout, an error above).
	if max := during.percentile(1); max >= requestTimeout/2 {
		t.Errorf("a signup took %v to be refused with the database down: it waited for the database (REQUEST_TIMEOUT %v)", max, requestTimeout)
	}
	d.requireNoneLost(t, counts)
	// The instance lock goes with the database's sessions: a send in
	// flight at the stop may be repeated, once per worker.
	if d.duplicates > appmail.DefaultWorkers {
		t.Errorf("%d duplicates; at most %d (one per worker)", d.duplicates, appmail.DefaultWorkers)
	}
}
