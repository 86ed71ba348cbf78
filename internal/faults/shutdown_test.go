package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"signup/internal/account"
	"signup/internal/devmail"
	"signup/internal/e2e"
	appmail "signup/internal/mail"
	"signup/internal/store"
	"signup/internal/store/storetest"
)

// fillBacklog inserts n accounts, backlog00000@example.com…, each with its
// confirmation pending in the outbox and due: what n signups write, without
// hashing n passwords. It returns the addresses.
func fillBacklog(t *testing.T, db *store.DB, n int) []string {
	t.Helper()
	ctx := t.Context()
	hash, err := account.NewHasher(account.DefaultParams(), 1).Hash(ctx, password)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Minute)
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO accounts (email, password_hash, created_at)
		  SELECT 'backlog' || lpad(i::text, 5, '0') || '@example.com', $1, $2 FROM generate_series(0, $3 - 1) i`, []any{hash, now, n}},
		{`INSERT INTO outbox (account_id, kind, created_at, next_attempt_at)
		  SELECT id, 'confirm', $1, $1 FROM accounts ORDER BY id`, []any{now}},
		{`ANALYZE`, nil},
	} {
		if _, err := db.Pool().Exec(ctx, st.sql, st.args...); err != nil {
			t.Fatalf("fill backlog: %v", err)
		}
	}
	emails := make([]string, n)
	for i := range emails {
		emails[i] = fmt.Sprintf("backlog%05d@example.com", i)
	}
	return emails
}

// TestShutdownWithBacklog: SIGTERM with 5,000 confirmations queued and an
// SMTP peer taking 200 ms per message. The process exits 0, its stop (as
// the host measures it, from "host stopping" to "host stopped") within
// its 5 s shutdown budget; nothing it did not send is lost: it is pending
// in the database, and the next start (SMTP fast again) sends all of it.
func TestShutdownWithBacklog(t *testing.T) {
	t.Parallel()
	const (
		n      = 5000
		budget = 5 * time.Second
		margin = time.Second
	)
	mail := startMail(t, devmail.Faults{Latency: 200 * time.Millisecond})
	dbURL := storetest.URL(t)
	db := openDB(t, dbURL)
	emails := fillBacklog(t, db, n)
	env := webEnv(dbURL, mail, "SHUTDOWN_TIMEOUT", budget.String())
	p := e2e.Start(t, fastBinary, env)
	e2e.WaitReady(t, p.URL(), 30*time.Second)
	// Stop while every worker is inside DATA, waiting on the slow peer.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := mail.WaitAttempts(ctx, 2*appmail.DefaultWorkers); err != nil {
		t.Fatalf("the sender never reached the peer: %v", err)
	}
	stop := time.Now()
	if err := p.Cmd.Process.Signal(interrupt); err != nil {
		t.Fatal(err)
	}
	// From outside, the wait also counts delivering the signal and ending
	// the process, the machine's business: only a hang fails here.
	code := p.Wait(t, budget+time.Minute)
	exited := time.Since(stop)
	rec := p.WaitLog(t, time.Second, func(l map[string]any) bool { return l["msg"] == "host stopped" })
	ns, _ := rec["duration"].(float64)
	stopped := time.Duration(ns)
	left, err := db.Outbox().Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	accepted := mail.Received()
	t.Logf("SIGTERM with %d queued and SMTP at 200 ms/message: stopped in %v (budget %v), exit %d %v after the signal; outbox then %+v; peer had accepted %d",
		n, stopped.Round(time.Millisecond), budget, code, exited.Round(time.Millisecond), left, accepted)
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if stopped > budget+margin {
		t.Errorf("stopping took %v, over the %v budget plus %v", stopped, budget, margin)
	}
	if left.Sending != 0 || left.Failed != 0 || left.Pending+left.Sent != n {
		t.Errorf("outbox after the stop %+v: want every row sent or pending again, none held or failed", left)
	}

	mail.SetFaults(devmail.Faults{})
	restart := time.Now()
	p2 := e2e.Start(t, fastBinary, env)
	d := waitConfirmations(t, mail, emails, 2*time.Minute)
	took := time.Since(restart)
	counts := waitOutboxSettled(t, db, 30*time.Second)
	t.Logf("restarted with SMTP fast: %d of %d confirmations in %v; lost %d, duplicates %d; outbox %+v",
		n-len(d.missing), n, took.Round(time.Millisecond), len(d.missing), d.duplicates, counts)
	if len(d.missing) > 0 {
		t.Errorf("%d queued confirmations never arrived: %v", len(d.missing), d.missing[:min(5, len(d.missing))])
	}
	if counts.Sent != n {
		t.Errorf("outbox %+v, want all %d sent", counts, n)
	}
	// Sends interrupted by the stop may have reached the peer: at most one
	// per worker comes again.
	if d.duplicates > appmail.DefaultWorkers {
		t.Errorf("%d duplicates; at most %d (one per worker in DATA at the stop)", d.duplicates, appmail.DefaultWorkers)
	}
	p2.Cmd.Process.Signal(interrupt)
	if code := p2.Wait(t, 30*time.Second); code != 0 {
		t.Errorf("second process: exit code %d", code)
	}
}
