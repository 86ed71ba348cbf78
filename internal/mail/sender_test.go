package mail_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"signup/internal/account"
	"signup/internal/devmail"
	"signup/internal/hosted"
	appmail "signup/internal/mail"
	"signup/internal/store/storetest"
)

var (
	tokenLink = regexp.MustCompile(`^` + regexp.QuoteMeta(baseURL) + `/confirm\?token=([A-Za-z0-9_-]{43})$`)
	messageID = regexp.MustCompile(`^<outbox-[0-9]+\.[0-9a-z]+@signup\.example\.test>$`)
)

func TestConfirmationIsSent(t *testing.T) {
	s, b := setup(t, devmail.Config{}, nil)
	start(t, s)
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	id := b.enqueue(t, 1)[0]

	msg := b.waitMessages(t, 1)[0]
	if got, want := msg.To, []string{"user0@example.test"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("envelope to = %v, want %v", got, want)
	}
	if msg.From != "no-reply@signup.example.test" {
		t.Errorf("envelope from = %q", msg.From)
	}
	from, err := mail.ParseAddress(msg.Header.Get("From"))
	if err != nil || from.Name != "Signup Test" || from.Address != "no-reply@signup.example.test" {
		t.Errorf("From header %q: %v, %v", msg.Header.Get("From"), from, err)
	}
	if to := msg.Header.Get("To"); to != "<user0@example.test>" {
		t.Errorf("To header = %q", to)
	}
	if msg.Subject != "Confirm your email address for Signup" {
		t.Errorf("subject = %q", msg.Subject)
	}
	date, err := msg.Header.Date()
	if err != nil || date.Before(before) || date.After(time.Now().Add(time.Second)) {
		t.Errorf("Date %q = %v, %v; want about now", msg.Header.Get("Date"), date, err)
	}
	if id := msg.Header.Get("Message-Id"); !messageID.MatchString(id) {
		t.Errorf("Message-ID = %q, want <outbox-ID.time@signup.example.test>, on MAIL_FROM's domain", id)
	}
	if ct := msg.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type = %q, want multipart/alternative", ct)
	}
	if msg.ParseError != "" {
		t.Errorf("message did not parse: %s", msg.ParseError)
	}

	// One link, in both parts, carrying a 43-character token.
	var links []string
	for _, l := range msg.Links {
		if strings.Contains(l, "token=") {
			links = append(links, l)
		}
	}
	if len(links) != 1 {
		t.Fatalf("confirmation links = %v, want one", msg.Links)
	}
	match := tokenLink.FindStringSubmatch(links[0])
	if match == nil {
		t.Fatalf("link %q is not %s/confirm?token=<43 chars>", links[0], baseURL)
	}
	token := match[1]
	if !strings.Contains(msg.Text, links[0]) || !strings.Contains(msg.HTML, links[0]) {
		t.Errorf("link missing from a part:\ntext: %s\nhtml: %s", msg.Text, msg.HTML)
	}
	if !strings.Contains(msg.Text, "within 24 hours") {
		t.Errorf("text does not say how long the link works:\n%s", msg.Text)
	}

	// The database knows only the hash, and the token works once.
	results := b.results.wait(t, "sent", func(r []appmail.Result) bool { return count(r, id, appmail.OutcomeSent) == 1 })
	if r := results[0]; r.Kind != account.MailConfirm || r.Attempt != 1 || r.Err != nil {
		t.Errorf("result = %+v", r)
	}
	var hashes [][]byte
	rows, err := b.db.Pool().Query(t.Context(), `SELECT hash FROM tokens`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	if len(hashes) != 1 || string(hashes[0]) != string(sum[:]) {
		t.Fatalf("tokens table = %x, want only sha256(token) %x", hashes, sum)
	}
	hash, ok := account.HashToken(token)
	if !ok {
		t.Fatal("the mailed token is not a valid token")
	}
	if _, err := b.db.Accounts().Confirm(t.Context(), hash, "h", time.Now()); err != nil {
		t.Errorf("use the mailed token: %v", err)
	}
	if _, err := b.db.Accounts().Confirm(t.Context(), hash, "h", time.Now()); !errors.Is(err, account.ErrAlreadyConfirmed) {
		t.Errorf("use it again = %v, want ErrAlreadyConfirmed", err)
	}

	if r := b.row(t, id); r.Status != "sent" || r.Attempts != 1 || r.SentAt == nil || r.LastError != nil {
		t.Errorf("outbox row = %+v", r)
	}
}

func TestOtherKindsCarryNoToken(t *testing.T) {
	s, b := setup(t, devmail.Config{}, nil)
	ctx := t.Context()
	// A confirmed account that someone tries to sign up with again.
	first := signup(t, b.db, "owner@example.test")
	if _, err := b.db.Pool().Exec(ctx, `UPDATE outbox SET status = 'sent' WHERE id = $1`, first); err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Pool().Exec(ctx, `UPDATE accounts SET confirmed_at = $1, last_seen_at = $1`, time.Now()); err != nil {
		t.Fatal(err)
	}
	res, err := b.db.Accounts().Signup(ctx, "owner@example.test", "x", time.Now(), storetest.NoLimit("owner@example.test"), storetest.NoLimit("owner@example.test"))
	if err != nil || res.Kind != account.MailSignupAttempt {
		t.Fatalf("second signup = %+v, %v", res, err)
	}
	// A dormant account, warned today.
	warned := time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)
	dormant := signup(t, b.db, "dormant@example.test")
	var warning int64
	err = b.db.Pool().QueryRow(ctx, `
		WITH a AS (UPDATE accounts SET confirmed_at = $2, warned_at = $2 WHERE id = (SELECT account_id FROM outbox WHERE id = $1) RETURNING id)
		INSERT INTO outbox (account_id, kind, created_at, next_attempt_at) SELECT id, 'inactive_warning', $3, $3 FROM a RETURNING id`,
		dormant, warned, time.Now()).Scan(&warning)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Pool().Exec(ctx, `UPDATE outbox SET status = 'sent' WHERE id = $1`, dormant); err != nil {
		t.Fatal(err)
	}
	start(t, s) // the sweep finds both

	b.waitMessages(t, 2)
	attempt := b.smtp.MessagesTo("owner@example.test")
	if len(attempt) != 1 || attempt[0].Subject != "Someone tried to sign up for Signup with your email address" {
		t.Fatalf("signup attempt mail = %+v", attempt)
	}
	for _, l := range attempt[0].Links {
		if strings.Contains(l, "token") {
			t.Errorf("signup attempt mail carries a token: %s", l)
		}
	}
	if want := baseURL + "/login"; !strings.Contains(attempt[0].Text, want) || !strings.Contains(attempt[0].HTML, want) {
		t.Errorf("signup attempt mail lacks the sign-in link %s:\n%s", want, attempt[0].Text)
	}
	warn := b.smtp.MessagesTo("dormant@example.test")
	if len(warn) != 1 || warn[0].Subject != "Your Signup account will be deleted soon" {
		t.Fatalf("dormancy warning = %+v", warn)
	}
	// Deleted by the first run after 8 March 12:00: 7 March is the last
	// whole day it is certain to be kept.
	if want := "at least until the end of 7 March 2030 (UTC)"; !strings.Contains(strings.Join(strings.Fields(warn[0].Text), " "), want) {
		t.Errorf("warning does not give the last day kept (%s):\n%s", want, warn[0].Text)
	}
	var tokens int
	if err := b.db.Pool().QueryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&tokens); err != nil || tokens != 0 {
		t.Errorf("tokens = %d, %v; want none", tokens, err)
	}
}

func TestSweepFindsWhatTheQueueMissed(t *testing.T) {
	s, b := setup(t, devmail.Config{}, nil)
	ctx := t.Context()
	// Committed, but the notification never reached the queue.
	missed := signup(t, b.db, "missed@example.test")
	// Leased by an instance that died: its lease ran out.
	dead := signup(t, b.db, "dead@example.test")
	if _, err := b.db.Pool().Exec(ctx, `
		UPDATE outbox SET status = 'sending', attempts = 1, leased_by = 'dead-instance', lease_until = $2 WHERE id = $1`,
		dead, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	// Leased by an instance that is alive and sending it: not ours.
	storetest.LockInstance(t, b.db, "live-instance")
	live := signup(t, b.db, "live@example.test")
	if _, err := b.db.Pool().Exec(ctx, `
		UPDATE outbox SET status = 'sending', attempts = 1, leased_by = 'live-instance', lease_until = $2 WHERE id = $1`,
		live, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	b.queue.TryEnqueue(appmail.NewJob(live)) // even when offered, another's live lease is respected
	start(t, s)

	b.results.wait(t, "both sent", func(r []appmail.Result) bool {
		return count(r, missed, appmail.OutcomeSent) == 1 && count(r, dead, appmail.OutcomeSent) == 1
	})
	if r := b.row(t, dead); r.Status != "sent" || r.Attempts != 2 {
		t.Errorf("dead instance's row = %+v, want sent on attempt 2", r)
	}
	if r := b.row(t, live); r.Status != "sending" || *r.LeasedBy != "live-instance" || r.Attempts != 1 {
		t.Errorf("live instance's row = %+v, want untouched", r)
	}
	if n := len(b.smtp.MessagesTo("live@example.test")); n != 0 {
		t.Errorf("sent %d messages for a row another instance holds", n)
	}
}

func TestTemporaryFailureIsRetried(t *testing.T) {
	s, b := setup(t, devmail.Config{}, nil)
	b.smtp.FailNext(2, 451)
	start(t, s)
	id := b.enqueue(t, 1)[0]

	results := b.results.wait(t, "sent", func(r []appmail.Result) bool { return count(r, id, appmail.OutcomeSent) == 1 })
	if got := outcomes(results); got != "retry retry sent" {
		t.Errorf("outcomes = %s, want retry retry sent", got)
	}
	for _, r := range results[:2] {
		if r.Err == nil || !strings.Contains(r.Err.Error(), "451") {
			t.Errorf("retry error = %v, want the 451 reply", r.Err)
		}
	}
	if r := b.row(t, id); r.Status != "sent" || r.Attempts != 3 {
		t.Errorf("outbox row = %+v, want sent after 3 attempts", r)
	}
	if n := len(b.smtp.MessagesTo("user0@example.test")); n != 1 {
		t.Errorf("%d messages arrived, want 1", n)
	}
	if got := b.smtp.Attempts(); got != 3 {
		t.Errorf("devmail saw %d attempts, want 3", got)
	}
}

func TestPermanentFailureFailsAtOnce(t *testing.T) {
	s, b := setup(t, devmail.Config{}, nil)
	b.smtp.FailNext(1, 550)
	start(t, s)
	id := b.enqueue(t, 1)[0]

	results := b.results.wait(t, "failed", func(r []appmail.Result) bool { return count(r, id, appmail.OutcomeFailed) == 1 })
	if got := outcomes(results); got != "failed" {
		t.Errorf("outcomes = %s, want failed", got)
	}
	r := b.row(t, id)
	if r.Status != "failed" || r.Attempts != 1 || r.LastError == nil || !strings.Contains(*r.LastError, "550") {
		t.Errorf("outbox row = %+v, want failed after 1 attempt with the 550 reply kept", r)
	}
	if got := b.smtp.Attempts(); got != 1 {
		t.Errorf("devmail saw %d attempts, want 1", got)
	}
}

// TestGivesUpByAge: a message older than MaxAge is failed with its last
// error, whatever its attempts.
func TestGivesUpByAge(t *testing.T) {
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) { c.MaxAge = time.Hour })
	id := signup(t, b.db, "old@example.test")
	if _, err := b.db.Pool().Exec(t.Context(), `
		UPDATE outbox SET created_at = created_at - interval '2 hours', last_error = '451 4.7.1 greylisted', attempts = 3
		WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	start(t, s)
	b.queue.TryEnqueue(appmail.NewJob(id))
	b.results.wait(t, "failed", func(r []appmail.Result) bool { return count(r, id, appmail.OutcomeFailed) == 1 })
	r := b.row(t, id)
	if r.Status != "failed" || r.LastError == nil || !strings.Contains(*r.LastError, "greylisted") || !strings.Contains(*r.LastError, "undelivered after 1h") {
		t.Errorf("outbox row = %+v, want failed by age with the last error kept", r)
	}
	if got := b.smtp.Attempts(); got != 0 {
		t.Errorf("devmail saw %d attempts, want none", got)
	}
}

// TestOutageBlocksAndCostsNothing: while the server refuses connections
// the sender is blocked, no attempt is spent and nothing fails; when it is
// back, the whole backlog goes out, each row on its first attempt.
func TestOutageBlocksAndCostsNothing(t *testing.T) {
	obs := &observer{}
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) { c.Observer = obs })
	b.smtp.SetFaults(devmail.Faults{Refuse: true})
	start(t, s)
	const n = 10
	ids := b.enqueue(t, n)

	b.results.wait(t, "blocked", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeBlocked) > 0 })
	if blocked, reply, since := s.Blocked(); !blocked || reply == "" || since.IsZero() {
		t.Errorf("Blocked() = %v, %q, %v; want blocked with the failure", blocked, reply, since)
	}
	for _, id := range ids {
		if r := b.row(t, id); r.Status == "failed" || r.Attempts != 0 && r.Status != "sending" {
			t.Errorf("outbox row %d during the outage = %+v; want no attempt spent", id, r)
		}
	}

	b.smtp.SetFaults(devmail.Faults{})
	b.waitMessages(t, n)
	b.results.wait(t, "all sent", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeSent) == n })
	for _, id := range ids {
		if r := b.row(t, id); r.Status != "sent" || r.Attempts != 1 {
			t.Errorf("outbox row %d = %+v, want sent on its first attempt", id, r)
		}
	}
	if blocked, _, _ := s.Blocked(); blocked {
		t.Error("still blocked after the server came back")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.blocked) != 2 || !strings.HasPrefix(obs.blocked[0], "blocked: ") || obs.blocked[1] != "unblocked" {
		t.Errorf("observer heard %q; want one block and one unblock", obs.blocked)
	}
	for _, a := range obs.attempts {
		if strings.Contains(a, "failed") || strings.Contains(a, "retry") {
			t.Errorf("attempt observed during the outage: %s", a)
		}
	}
}

func TestTwoInstancesSendEachMailOnce(t *testing.T) {
	const n = 1000
	var sentByA, sentByB atomic.Int64
	_, b := setup(t, devmail.Config{}, func(c *appmail.Config) {
		c.Workers = 4
		c.SweepBatch = 50
	})
	// Two instances on one database; both report to one recorder and each
	// counts what it sent.
	shared := b.results
	instance := func(cfg appmail.Config, name string, sent *atomic.Int64) appmail.Config {
		cfg.Instance = name
		cfg.Queue = hosted.NewQueue[appmail.Job](256)
		cfg.OnResult = func(r appmail.Result) {
			if r.Outcome == appmail.OutcomeSent {
				sent.Add(1)
			}
			shared.record(r)
		}
		return cfg
	}
	a := newSender(t, instance(b.cfg, "instance-a", &sentByA))
	second := newSender(t, instance(b.cfg, "instance-b", &sentByB))

	// Insert the rows concurrently; no queue is told: only the sweeps share
	// them out.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := b.db.Accounts().Signup(t.Context(), fmt.Sprintf("u%04d@example.test", i), "x", time.Now(), storetest.NoLimit(fmt.Sprintf("u%04d@example.test", i)), storetest.NoLimit(fmt.Sprintf("u%04d@example.test", i))); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	start(t, a)
	start(t, second)

	shared.wait(t, "all sent", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeSent) >= n })
	stopCtx := testContext(t)
	if err := a.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := second.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}

	perRecipient := map[string]int{}
	for _, m := range b.smtp.Messages() {
		perRecipient[m.To[0]]++
	}
	dups := 0
	for rcpt, k := range perRecipient {
		if k != 1 {
			dups++
			t.Errorf("%s got %d messages", rcpt, k)
		}
	}
	if len(perRecipient) != n || dups != 0 || b.smtp.Received() != n {
		t.Errorf("recipients %d, duplicates %d, received %d; want %d, 0, %d", len(perRecipient), dups, b.smtp.Received(), n, n)
	}
	if c := b.statusCounts(t); c.Sent != n {
		t.Errorf("outbox = %+v, want all %d sent", c, n)
	}
	t.Logf("instance a sent %d, instance b sent %d", sentByA.Load(), sentByB.Load())
	if sentByA.Load()+sentByB.Load() != n || sentByA.Load() == 0 || sentByB.Load() == 0 {
		t.Errorf("sent by a %d + by b %d, want %d shared between both", sentByA.Load(), sentByB.Load(), n)
	}
}

func TestConnectionsAreReused(t *testing.T) {
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) { c.Workers = 1 })
	start(t, s)
	const n = 40
	b.enqueue(t, n)
	b.waitMessages(t, n)
	b.results.wait(t, "all sent", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeSent) == n })
	if got := b.smtp.Connections(); got != 1 {
		t.Errorf("%d messages over %d connections, want 1", n, got)
	}

	// A message the server answered with a 4xx does not cost the
	// connection: RSET, and the next message goes over the same one.
	b.smtp.FailNext(1, 451)
	signup(t, b.db, "again@example.test")
	b.results.wait(t, "retry then sent", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeSent) == n+1 })
	if got := b.smtp.Connections(); got != 1 {
		t.Errorf("connections after a 4xx = %d, want 1", got)
	}
}

// TestCommandsArePipelined: devmail offers PIPELINING (RFC 2920), so a
// message costs it two reads or three: MAIL FROM, RCPT TO and DATA in one
// write, then the message and its final dot (in two writes when the dot
// waits for the last message's mark). Waiting for each reply, a message
// takes at least four: MAIL FROM, RCPT TO, DATA, the message.
func TestCommandsArePipelined(t *testing.T) {
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) { c.Workers = 1 })
	start(t, s)
	before := b.smtp.Reads()
	const n = 40
	b.enqueue(t, n)
	b.waitMessages(t, n)
	b.results.wait(t, "all sent", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeSent) == n })
	// The connection's greeting exchange and EHLO are a few reads more.
	perMessage := float64(b.smtp.Reads()-before) / n
	t.Logf("%.2f reads per message", perMessage)
	if perMessage > 3.5 {
		t.Errorf("the server read %.2f times per message; pipelined, it takes 2 or 3", perMessage)
	}
	if got := b.smtp.Connections(); got != 1 {
		t.Errorf("%d messages over %d connections, want 1", n, got)
	}
}

func TestStopDrainsTheQueue(t *testing.T) {
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) {
		c.Workers = 1
		c.SweepEvery = time.Hour
	})
	start(t, s)
	const n = 20
	b.enqueue(t, n)
	if err := s.Stop(testContext(t)); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if c := b.statusCounts(t); c.Sent != n {
		t.Errorf("after stop: %+v, want all %d sent", c, n)
	}
	if got := b.smtp.Received(); got != n {
		t.Errorf("received %d, want %d", got, n)
	}
}

func TestStopWithinBudgetLeavesTheRestPending(t *testing.T) {
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) { c.Workers = 2 })
	b.smtp.SetFaults(devmail.Faults{Latency: time.Minute})
	start(t, s)
	const n = 10
	b.enqueue(t, n)
	// Both workers are inside DATA, held by the latency.
	if err := b.smtp.WaitAttempts(testContext(t), 2); err != nil {
		t.Fatal(err)
	}

	// Stop keeps a fifth of the budget to interrupt the sends and give the
	// rows back: 400 ms here. With 500 ms in all, the 100 ms left was
	// sometimes too little for the race detector on a busy 2-core machine.
	const budget = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	began := time.Now()
	err := s.Stop(ctx)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("stop: %v", err)
	}
	if took > budget {
		t.Errorf("stop took %v, budget %v", took, budget)
	}
	if c := b.statusCounts(t); c.Pending != n {
		t.Fatalf("after stop: %+v, want all %d pending", c, n)
	}
	if got := count(b.results.wait(t, "interrupted", func([]appmail.Result) bool { return true }), 0, appmail.OutcomeInterrupted); got != 2 {
		t.Errorf("%d attempts interrupted, want 2", got)
	}

	// The next sender (say, after a restart) sends them all.
	b.smtp.SetFaults(devmail.Faults{})
	cfg := b.cfg
	cfg.Instance = "restarted"
	cfg.Queue = hosted.NewQueue[appmail.Job](16)
	results := newRecorder()
	cfg.OnResult = results.record
	start(t, newSender(t, cfg))
	results.wait(t, "all sent", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeSent) == n })
	if c := b.statusCounts(t); c.Sent != n {
		t.Errorf("outbox = %+v, want all sent", c)
	}
}

func TestLifecycle(t *testing.T) {
	s, b := setup(t, devmail.Config{}, nil)
	ctx := testContext(t)
	if err := s.Stop(ctx); err != nil {
		t.Errorf("stop before start: %v", err)
	}
	start(t, s)
	if err := s.Start(ctx); err == nil {
		t.Error("second start succeeded")
	}
	if n := len(b.lockHolders(t, b.cfg.Instance)); n != 1 {
		t.Errorf("%d sessions hold the instance lock while running, want 1", n)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	if n := len(b.lockHolders(t, b.cfg.Instance)); n != 0 {
		t.Errorf("%d sessions hold the instance lock after stop, want 0", n)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second stop: %v", err)
	}
	start(t, s) // a stopped sender starts again; the cleanup stops it
}

func TestRefusesHeaderInjection(t *testing.T) {
	s, b := setup(t, devmail.Config{}, nil)
	start(t, s)
	id := signup(t, b.db, "victim@example.test\r\nBcc: everyone@example.test")
	b.queue.TryEnqueue(appmail.NewJob(id))
	results := b.results.wait(t, "failed", func(r []appmail.Result) bool { return count(r, id, appmail.OutcomeFailed) == 1 })
	if err := results[0].Err; err == nil || !strings.Contains(err.Error(), "invalid recipient") {
		t.Errorf("error = %v, want an invalid recipient", err)
	}
	if got := b.smtp.Attempts(); got != 0 {
		t.Errorf("devmail saw %d attempts, want none", got)
	}
}

// TestSTARTTLSRequiredWithoutTLSBlocks: a server without STARTTLS under
// starttls=required blocks the sender; no message is spent or failed.
func TestSTARTTLSRequiredWithoutTLSBlocks(t *testing.T) {
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) { c.SMTP.TLS = appmail.STARTTLSRequired })
	start(t, s)
	id := b.enqueue(t, 1)[0]
	results := b.results.wait(t, "blocked", func(r []appmail.Result) bool { return count(r, id, appmail.OutcomeBlocked) > 0 })
	if err := results[0].Err; err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("error = %v, want a STARTTLS complaint", err)
	}
	if blocked, reply, _ := s.Blocked(); !blocked || !strings.Contains(reply, "STARTTLS") {
		t.Errorf("Blocked() = %v, %q", blocked, reply)
	}
	if got := b.smtp.Received(); got != 0 {
		t.Errorf("sent %d messages in the clear", got)
	}
	if r := b.row(t, id); r.Status == "failed" {
		t.Errorf("outbox row = %+v, want not failed", r)
	}
}

func TestTLSAndAuth(t *testing.T) {
	for _, tc := range []struct {
		name string
		dm   devmail.Config
		url  func(addr string) string
	}{
		{"starttls required", devmail.Config{TLS: true}, func(a string) string { return "smtp://mailer:s3cret@" + a + "?starttls=required" }},
		{"starttls opportunistic", devmail.Config{TLS: true}, func(a string) string { return "smtp://mailer:s3cret@" + a }},
		{"implicit tls", devmail.Config{ImplicitTLS: true}, func(a string) string { return "smtps://mailer:s3cret@" + a }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The URL and the trust depend on the running server.
			_, b := setup(t, tc.dm, nil)
			cfg := b.cfg
			srv, err := appmail.ParseSMTPURL(tc.url(b.smtp.SMTPAddr()))
			if err != nil {
				t.Fatal(err)
			}
			cfg.SMTP = srv
			cfg.TLSConfig = tlsTrusting(b.smtp)
			start(t, newSender(t, cfg))
			b.enqueue(t, 1)
			msg := b.waitMessages(t, 1)[0]
			if !msg.TLS || msg.AuthUser != "mailer" {
				t.Errorf("message came with TLS=%v as %q, want TLS as mailer", msg.TLS, msg.AuthUser)
			}
		})
	}
}

// outcomes lists the outcomes in order: "retry retry sent".
func outcomes(results []appmail.Result) string {
	var s []string
	for _, r := range results {
		s = append(s, string(r.Outcome))
	}
	return strings.Join(s, " ")
}

// tlsTrusting trusts srv's self-signed certificate.
func tlsTrusting(srv *devmail.Server) *tls.Config {
	return &tls.Config{RootCAs: srv.CertPool(), MinVersion: tls.VersionTLS12}
}

// TestRetryIsOnTime: a temporary failure is retried when its backoff is
// over, not at the next periodic sweep (an hour away here).
func TestRetryIsOnTime(t *testing.T) {
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) {
		c.SweepEvery = time.Hour
		c.RetryMin, c.RetryMax = 200*time.Millisecond, 400*time.Millisecond
	})
	b.smtp.FailNext(3, 451)
	start(t, s)
	ids := b.enqueue(t, 2)
	began := time.Now()
	// Three failures among two rows: one row waits two backoffs (at most
	// 200 ms, then 400 ms) plus the sends, however slow the machine; a
	// retry left to the sweep would wait an hour, far past the wait's
	// deadline (testTimeout), which is what fails it.
	b.results.wait(t, "both sent, their retries on time rather than at the sweep an hour away", func(r []appmail.Result) bool {
		return count(r, ids[0], appmail.OutcomeSent) == 1 && count(r, ids[1], appmail.OutcomeSent) == 1
	})
	t.Logf("three failures over two rows, both sent %v after they were queued", time.Since(began).Round(time.Millisecond))
}
