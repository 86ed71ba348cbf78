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
// signups arrive at a steady rate. Signups keep answering fast (they never
// wait for SMTP); once the peer is back, the backlog drains and every
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

	mail.SetFaults(devmail.Faults{Refuse: true})
	outs := pacedSignups(t.Context(), c, p.URL(), "outage", rate, outage)
	during := mail.Received()
	mail.SetFaults(devmail.Faults{})
	back := time.Now()

	var took latencies
	for _, o := range outs {
		took = append(took, o.took)
	}
	db := openDB(t, dbURL)
	ok := answered(outs)
	want := union(ok, accountEmails(t, db))
	d := waitConfirmations(t, mail, want, 60*time.Second)
	drained := time.Since(back)
	counts := waitOutboxSettled(t, db, 30*time.Second)

	t.Logf("%d signups at %d/s while SMTP refused connections for %v: %s; answers %s",
		len(outs), rate, outage, took, tally(outs))
	t.Logf("mail accepted during the outage: %d; after it: every confirmation in %v; lost %d, duplicates %d, SMTP connections %d; outbox %+v",
		during, drained.Round(time.Millisecond), len(d.missing), d.duplicates, mail.Connections(), counts)
	if len(ok) != len(outs) {
		t.Errorf("%d of %d signups were not answered 303 during the outage (%s)", len(outs)-len(ok), len(outs), tally(outs))
	}
	if p99 := took.percentile(0.99); p99 > 500*time.Millisecond {
		t.Errorf("signup p99 %v during the SMTP outage; signups must not wait for SMTP", p99)
	}
	if during != 0 {
		t.Errorf("%d messages accepted by a peer that refused every connection", during)
	}
	d.requireNoneLost(t, counts)
	if d.duplicates > appmail.DefaultWorkers {
		t.Errorf("%d duplicates without a crash", d.duplicates)
	}
}
