package faults_test

import (
	"testing"
	"time"

	"signup/internal/devmail"
	"signup/internal/e2e"
	appmail "signup/internal/mail"
	"signup/internal/store/storetest"
)

// TestSMTPOutage: the SMTP peer refuses every connection for 30 s while
// signups arrive at a steady rate. Signups keep answering as fast as they
// did with the peer up, measured just before at the same rate for as long
// (they never wait for SMTP; the baseline is what this machine does now,
// busy or not); once the peer is back, the backlog drains and every
// confirmation arrives.
func TestSMTPOutage(t *testing.T) {
	t.Parallel()
	const (
		outage = 30 * time.Second
		rate   = 10 // signups per second
	)
	mail := startMail(t, devmail.Faults{})
	dbURL := storetest.URL(t)
	// An outage spends no attempts (the sender is blocked and probes the
	// server); short retry bounds only keep a message's own 4xx quick.
	p := e2e.Start(t, fastBinary, webEnv(dbURL, mail, "MAIL_RETRY_MIN", "1s", "MAIL_RETRY_MAX", "10s"))
	e2e.WaitReady(t, p.URL(), 30*time.Second)
	c := e2e.NewClient()

	// The baseline runs as long as the outage, at the same rate: on a
	// machine too busy to keep up with the rate, answers slow down as the
	// backlog of requests grows, the longer the load lasts. Both phases
	// start with no request in flight (pacedSignups waits for every
	// answer).
	baseline := pacedSignups(t.Context(), c, p.URL(), "baseline", rate, outage)
	mail.SetFaults(devmail.Faults{Refuse: true})
	received := mail.Received()
	outs := pacedSignups(t.Context(), c, p.URL(), "outage", rate, outage)
	during := mail.Received() - received
	mail.SetFaults(devmail.Faults{})
	back := time.Now()

	var took, before latencies
	for _, o := range outs {
		took = append(took, o.took)
	}
	for _, o := range baseline {
		before = append(before, o.took)
	}
	db := openDB(t, dbURL)
	ok := answered(outs)
	want := union(ok, answered(baseline), accountEmails(t, db))
	d := waitConfirmations(t, mail, want, 2*time.Minute)
	drained := time.Since(back)
	counts := waitOutboxSettled(t, db, 30*time.Second)

	t.Logf("%d signups at %d/s with SMTP up, before: %s; answers %s", len(baseline), rate, before, tally(baseline))
	t.Logf("%d signups at %d/s while SMTP refused connections for %v: %s; answers %s",
		len(outs), rate, outage, took, tally(outs))
	t.Logf("mail accepted during the outage: %d; after it: every confirmation in %v; lost %d, duplicates %d, SMTP connections %d; outbox %+v",
		during, drained.Round(time.Millisecond), len(d.missing), d.duplicates, mail.Connections(), counts)
	if len(ok) != len(outs) {
		t.Errorf("%d of %d signups were not answered 303 during the outage (%s)", len(outs)-len(ok), len(outs), tally(outs))
	}
	// Twice the baseline's p99 (and at least 500 ms, as on an idle
	// machine) leaves room for the machine's own ups and downs between
	// the two measurements.
	limit := max(500*time.Millisecond, 2*before.percentile(0.99))
	if p99 := took.percentile(0.99); p99 > limit {
		t.Errorf("signup p99 %v during the SMTP outage, against %v with the peer up just before (limit %v); signups must not wait for SMTP",
			p99, before.percentile(0.99), limit)
	}
	if during != 0 {
		t.Errorf("%d messages accepted by a peer that refused every connection", during)
	}
	d.requireNoneLost(t, counts)
	if d.duplicates > appmail.DefaultWorkers {
		t.Errorf("%d duplicates without a crash", d.duplicates)
	}
}
