package e2e_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"signup/internal/devmail"
	"signup/internal/e2e"
	appmail "signup/internal/mail"
	"signup/internal/store"
	"signup/internal/store/storetest"
	"signup/internal/waitfor"
)

func startMail(t *testing.T) *devmail.Server {
	t.Helper()
	srv := devmail.New(devmail.Config{})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv
}

// waitMail waits until every address in want has at least one message,
// and returns the messages per address.
func waitMail(t *testing.T, srv *devmail.Server, want []string, timeout time.Duration) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	count := func(msgs []devmail.Message) map[string]int {
		per := map[string]int{}
		for _, m := range msgs {
			for _, to := range m.To {
				per[to]++
			}
		}
		return per
	}
	msgs, err := srv.Wait(ctx, func(msgs []devmail.Message) bool {
		per := count(msgs)
		for _, w := range want {
			if per[w] == 0 {
				return false
			}
		}
		return true
	})
	per := count(msgs)
	if err != nil {
		var missing []string
		for _, w := range want {
			if per[w] == 0 {
				missing = append(missing, w)
			}
		}
		shown := missing[:min(len(missing), 10)]
		t.Fatalf("%d of %d addresses got no mail within %v: %s", len(missing), len(want), timeout, strings.Join(shown, ", "))
	}
	return per
}

// outlastLeases moves every lease still held in the database at dbURL an
// hour further: what a dead process's rows look like when the lease
// would keep them far longer than the test waits. A restarted process
// that sends them within the test's deadline took them because their
// holder's instance lock was gone, not because the lease ran out, however
// slow the machine. It returns how many leases it moved.
func outlastLeases(t *testing.T, dbURL string) int64 {
	t.Helper()
	db, err := store.Open(t.Context(), dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tag, err := db.Pool().Exec(t.Context(),
		`UPDATE outbox SET lease_until = lease_until + interval '1 hour' WHERE status = 'sending'`)
	if err != nil {
		t.Fatalf("move the killed process's leases: %v", err)
	}
	return tag.RowsAffected()
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

// TestSignupDoesNotWaitForSMTP: with the SMTP peer taking five seconds per
// message, signups still answer, each in less time than one delivery
// takes, and every mail arrives later. It runs alone in this package (not
// parallel): its figures are latencies. The p99 under load, against a
// synchronous send, is make bench's slow-SMTP row.
func TestSignupDoesNotWaitForSMTP(t *testing.T) {
	mail := startMail(t)
	// Long enough that a signup on a busy machine (half a second, a
	// second at worst, most of it argon2id) stays well short of it.
	const latency = 5 * time.Second
	mail.SetFaults(devmail.Faults{Latency: latency})
	p := e2e.Start(t, fastBinary, map[string]string{
		"DATABASE_URL": storetest.URL(t), "SMTP_URL": mail.SMTPURL(), "RATE_LIMIT": "off",
	})
	e2e.WaitReady(t, p.URL(), 30*time.Second)
	c := e2e.NewClient()
	var took []time.Duration
	var emails []string
	for i := range 20 {
		email := fmt.Sprintf("slow%d@example.com", i)
		emails = append(emails, email)
		start := time.Now()
		c.Signup(t, p.URL(), email)
		took = append(took, time.Since(start))
	}
	p50, max := percentile(took, 0.5), percentile(took, 1)
	t.Logf("signup with SMTP at %v/message: p50 %v, max %v", latency, p50, max)
	// A signup that waited for SMTP takes at least the peer's latency; one
	// that did not takes what the machine needs for the signup alone.
	if max >= latency {
		t.Errorf("a signup took %v with SMTP at %v/message: it waited for the send", max, latency)
	}
	waitMail(t, mail, emails, 3*time.Minute)
}

// TestNoMailLostWhenKilled: signups commit while SMTP refuses connections;
// the outage spends no attempts and schedules no retry (every row is due
// at the kill, asserted in the database); the process is killed (SIGKILL)
// before any mail is sent; a restart sends every one, without waiting for
// a lease the killed process held (moved an hour on: its instance lock
// went with it). What the restart takes depends on the machine: it is
// logged, and the deadline only guards against a hang.
func TestNoMailLostWhenKilled(t *testing.T) {
	t.Parallel()
	mail := startMail(t)
	mail.SetFaults(devmail.Faults{Refuse: true})
	dbURL := storetest.URL(t)
	env := map[string]string{"DATABASE_URL": dbURL, "SMTP_URL": mail.SMTPURL(), "RATE_LIMIT": "off"}
	p := e2e.Start(t, webBinary, env)
	e2e.WaitReady(t, p.URL(), 30*time.Second)
	c := e2e.NewClient()
	var emails []string
	for i := range 25 {
		email := fmt.Sprintf("killed%d@example.com", i)
		emails = append(emails, email)
		c.Signup(t, p.URL(), email)
	}
	p.Kill()
	if n := mail.Received(); n != 0 {
		t.Fatalf("%d mails got through a refusing server", n)
	}
	db, err := store.Open(t.Context(), dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var spent, later int
	if err := db.Pool().QueryRow(t.Context(), `
		SELECT count(*) FILTER (WHERE status = 'pending' AND attempts > 0),
		       count(*) FILTER (WHERE status = 'pending' AND next_attempt_at > $1)
		FROM outbox`, time.Now()).Scan(&spent, &later); err != nil {
		t.Fatal(err)
	}
	if spent != 0 || later != 0 {
		t.Errorf("after the outage %d pending rows had attempts spent and %d a retry scheduled; an outage must spend neither", spent, later)
	}
	outlastLeases(t, dbURL)
	mail.SetFaults(devmail.Faults{})
	restart := time.Now()
	p2 := e2e.Start(t, webBinary, env)
	e2e.WaitReady(t, p2.URL(), time.Minute)
	ready := time.Now()
	per := waitMail(t, mail, emails, 3*time.Minute)
	dups := 0
	for _, e := range emails {
		dups += per[e] - 1
	}
	t.Logf("25 signups, killed, restarted: 25 delivered %v after the restart (%v after ready), %d duplicates",
		time.Since(restart).Round(time.Millisecond), time.Since(ready).Round(time.Millisecond), dups)
}

// TestNoMailLostWhenKilledMidSend: the process is killed while its workers
// are inside DATA (the SMTP peer holds each message far longer than the
// test lasts, so nothing completes before the kill); the restarted process
// sends every row, the killed one's in-flight rows included, without
// waiting for their leases to run out: the test moves those leases an hour
// on before the restart, so only the dead holder's missing instance lock
// can free them within the test's deadline.
func TestNoMailLostWhenKilledMidSend(t *testing.T) {
	t.Parallel()
	mail := startMail(t)
	mail.SetFaults(devmail.Faults{Latency: time.Hour})
	dbURL := storetest.URL(t)
	env := map[string]string{"DATABASE_URL": dbURL, "SMTP_URL": mail.SMTPURL(), "RATE_LIMIT": "off"}
	p := e2e.Start(t, webBinary, env)
	e2e.WaitReady(t, p.URL(), 30*time.Second)
	c := e2e.NewClient()
	const n, workers = 25, appmail.DefaultWorkers
	var emails []string
	for i := range n {
		email := fmt.Sprintf("midsend%d@example.com", i)
		emails = append(emails, email)
		c.Signup(t, p.URL(), email)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := mail.WaitAttempts(ctx, workers); err != nil {
		t.Fatalf("workers never reached DATA: %v", err)
	}
	p.Kill()
	mail.SetFaults(devmail.Faults{})
	if moved := outlastLeases(t, dbURL); moved < workers {
		t.Fatalf("%d rows leased at the kill, want at least the %d in DATA", moved, workers)
	}

	restart := time.Now()
	p2 := e2e.Start(t, webBinary, env)
	// Every row is sent by the restarted process, the killed one's in
	// flight too: the peer storing those proves nothing.
	sent := map[float64]bool{}
	waitfor.Until(t, 3*time.Minute, func() error {
		p2.Count(func(l map[string]any) bool {
			if id, ok := l["outbox_id"].(float64); ok && l["msg"] == "mail sent" {
				sent[id] = true
			}
			return false
		})
		if len(sent) < n {
			return fmt.Errorf("the restarted process has sent %d of %d rows", len(sent), n)
		}
		return nil
	})
	took := time.Since(restart)
	db, err := store.Open(t.Context(), dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if counts, err := db.Outbox().Counts(t.Context()); err != nil || counts.Sent != n {
		t.Errorf("outbox = %+v, %v; want all %d sent", counts, err, n)
	}
	per := waitMail(t, mail, emails, 2*time.Minute)
	dups := 0
	for _, e := range emails {
		dups += per[e] - 1
	}
	t.Logf("%d signups, killed with %d in DATA, restarted: every row sent %v after the restart, %d duplicates so far",
		n, workers, took.Round(time.Millisecond), dups)
	if dups > workers {
		t.Errorf("%d duplicates; at most the %d messages in flight at the kill may arrive twice", dups, workers)
	}
}

// TestTwoInstancesShareTheWork: two processes on one database take 1,000
// signups between them; every confirmation arrives, and duplicates are
// counted (zero without crashes).
func TestTwoInstancesShareTheWork(t *testing.T) {
	t.Parallel()
	mail := startMail(t)
	env := map[string]string{"DATABASE_URL": storetest.URL(t), "SMTP_URL": mail.SMTPURL(), "RATE_LIMIT": "off"}
	a := e2e.Start(t, fastBinary, env)
	b := e2e.Start(t, fastBinary, env)
	e2e.WaitReady(t, a.URL(), 30*time.Second)
	e2e.WaitReady(t, b.URL(), 30*time.Second)
	const n = 1000
	emails := make([]string, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e2e.NewClient()
			for i := range jobs {
				base := a.URL()
				if (i+w)%2 == 1 {
					base = b.URL()
				}
				c.Signup(t, base, emails[i])
			}
		}()
	}
	start := time.Now()
	for i := range n {
		emails[i] = fmt.Sprintf("pair%04d@example.com", i)
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("%d signups over two instances in %v", n, time.Since(start))
	per := waitMail(t, mail, emails, 2*time.Minute)
	dups := 0
	for _, e := range emails {
		dups += per[e] - 1
	}
	t.Logf("%d confirmations delivered, %d duplicates", n, dups)
	if dups != 0 {
		t.Errorf("%d duplicate confirmations without any crash", dups)
	}
	for _, p := range []*e2e.Process{a, b} {
		p.Cmd.Process.Signal(interrupt)
		if code := p.Wait(t, 60*time.Second); code != 0 {
			t.Errorf("exit code %d", code)
		}
	}
}
