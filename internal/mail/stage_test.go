package mail_test

import (
	"strings"
	"testing"

	"signup/internal/devmail"
	appmail "signup/internal/mail"
)

// requeueable signs up email and offers its row to the queue.
func (b *bundle) offer(t *testing.T, email string) int64 {
	t.Helper()
	id := signup(t, b.db, email)
	b.queue.TryEnqueue(appmail.NewJob(id))
	return id
}

// TestRejectedRecipientIsSuppressed: a 5xx to RCPT fails that message
// after one attempt and puts the address on the suppression list; a later
// message to it is not sent, and mail to others still goes.
func TestRejectedRecipientIsSuppressed(t *testing.T) {
	obs := &observer{}
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) { c.Observer = obs })
	b.smtp.SetFaults(devmail.Faults{Rcpt: map[string]*devmail.Reply{
		"nobody@example.test": {Code: 550, Enhanced: [3]int{5, 1, 1}, Message: "<nobody@example.test>: Recipient address rejected: User unknown"},
	}})
	start(t, s)
	first := b.offer(t, "nobody@example.test")
	b.results.wait(t, "failed", func(r []appmail.Result) bool { return count(r, first, appmail.OutcomeFailed) == 1 })
	if r := b.row(t, first); r.Status != "failed" || r.Attempts != 1 || r.LastError == nil || !strings.Contains(*r.LastError, "User unknown") {
		t.Errorf("outbox row = %+v, want failed after one attempt with the reply", r)
	}
	ss, err := b.db.Outbox().Suppressions(t.Context(), 10)
	if err != nil || len(ss) != 1 || ss[0].Address != "nobody@example.test" || !strings.Contains(ss[0].Reply, "550") {
		t.Fatalf("suppressions = %+v, %v", ss, err)
	}

	second := b.offer(t, "Nobody@Example.test") // the same account, a resend
	other := b.offer(t, "somebody@example.test")
	b.results.wait(t, "suppressed and sent", func(r []appmail.Result) bool {
		return count(r, second, appmail.OutcomeSuppressed) == 1 && count(r, other, appmail.OutcomeSent) == 1
	})
	if r := b.row(t, second); r.Status != "suppressed" {
		t.Errorf("resend row = %+v, want suppressed", r)
	}
	if got := b.smtp.Received(); got != 1 {
		t.Errorf("devmail received %d messages, want only the one to somebody", got)
	}
	if blocked, _, _ := s.Blocked(); blocked {
		t.Error("one rejected recipient blocked the sender")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.suppressed != 1 {
		t.Errorf("observer heard %d suppressions, want 1", obs.suppressed)
	}
}

// TestRepliesAboutUsBlock: replies that blame our setup, whatever the
// message, block the sender without spending an attempt; once the server
// takes mail again, the message goes out on its first attempt.
func TestRepliesAboutUsBlock(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults devmail.Faults
		reply  string
	}{
		{"greeting", devmail.Faults{Greeting: &devmail.Reply{Code: 554, Enhanced: [3]int{5, 3, 2}, Message: "no service for you"}}, "554"},
		{"mail from", devmail.Faults{Mail: &devmail.Reply{Code: 553, Enhanced: [3]int{5, 7, 1}, Message: "sender not allowed"}}, "sender not allowed"},
		{"helo at rcpt", devmail.Faults{Rcpt: map[string]*devmail.Reply{"": {Code: 504, Enhanced: [3]int{5, 5, 2}, Message: "<vm>: Helo command rejected: need fully-qualified hostname"}}}, "Helo command rejected"},
		{"relay at rcpt", devmail.Faults{Rcpt: map[string]*devmail.Reply{"": {Code: 554, Enhanced: [3]int{5, 7, 1}, Message: "<user0@example.test>: Relay access denied"}}}, "Relay access denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := setup(t, devmail.Config{}, nil)
			b.smtp.SetFaults(tc.faults)
			start(t, s)
			id := b.enqueue(t, 1)[0]
			b.results.wait(t, "blocked", func(r []appmail.Result) bool { return count(r, id, appmail.OutcomeBlocked) > 0 })
			if blocked, reply, _ := s.Blocked(); !blocked || !strings.Contains(reply, tc.reply) {
				t.Errorf("Blocked() = %v, %q; want blocked on %q", blocked, reply, tc.reply)
			}
			if r := b.row(t, id); r.Status == "failed" || r.Attempts > 1 {
				t.Errorf("outbox row = %+v, want no attempt spent", r)
			}
			if ss, _ := b.db.Outbox().Suppressions(t.Context(), 10); len(ss) != 0 {
				t.Errorf("suppressed %+v for our own fault", ss)
			}
			b.smtp.SetFaults(devmail.Faults{})
			b.results.wait(t, "sent", func(r []appmail.Result) bool { return count(r, id, appmail.OutcomeSent) == 1 })
			if r := b.row(t, id); r.Status != "sent" || r.Attempts != 1 {
				t.Errorf("outbox row = %+v, want sent on its first attempt", r)
			}
		})
	}
}

// TestSameRejectionForEveryoneBlocks: the same 5xx to three different
// recipients in a row is a refusal of us, not of them.
func TestSameRejectionForEveryoneBlocks(t *testing.T) {
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) { c.Workers = 1 })
	b.smtp.SetFaults(devmail.Faults{Rcpt: map[string]*devmail.Reply{"": {Code: 550, Enhanced: [3]int{5, 7, 1}, Message: "Service unavailable; client blocked"}}})
	start(t, s)
	ids := b.enqueue(t, 5)
	b.results.wait(t, "blocked", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeBlocked) > 0 })
	if blocked, _, _ := s.Blocked(); !blocked {
		t.Error("not blocked")
	}
	b.smtp.SetFaults(devmail.Faults{})
	b.results.wait(t, "the rest sent", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeSent) >= 3 })
	failed := 0
	for _, id := range ids {
		if b.row(t, id).Status == "failed" {
			failed++
		}
	}
	if failed > 2 {
		t.Errorf("%d rows failed; at most the two before the third identical rejection", failed)
	}
}

// TestOpportunisticTLSAndReturnPath: smtp:// without credentials encrypts
// with a certificate nobody trusts (like Postfix's snakeoil), and the
// envelope sender is MAIL_RETURN_PATH.
func TestOpportunisticTLSAndReturnPath(t *testing.T) {
	s, b := setup(t, devmail.Config{TLS: true}, func(c *appmail.Config) { c.ReturnPath = "bounces@signup.example.test" })
	start(t, s)
	b.enqueue(t, 1)
	msg := b.waitMessages(t, 1)[0]
	if !msg.TLS {
		t.Error("sent in the clear to a server offering STARTTLS")
	}
	if msg.From != "bounces@signup.example.test" {
		t.Errorf("envelope sender = %q, want the return path", msg.From)
	}
}

// TestCredentialsNeedAVerifiedServer: with credentials in the URL, a
// certificate that cannot be verified blocks the sender: the password is
// never sent.
func TestCredentialsNeedAVerifiedServer(t *testing.T) {
	_, b := setup(t, devmail.Config{TLS: true}, nil)
	cfg := b.cfg
	srv, err := appmail.ParseSMTPURL("smtp://mailer:s3cret@" + b.smtp.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	cfg.SMTP = srv
	s := newSender(t, cfg)
	start(t, s)
	id := b.enqueue(t, 1)[0]
	b.results.wait(t, "blocked", func(r []appmail.Result) bool { return count(r, id, appmail.OutcomeBlocked) > 0 })
	if blocked, reply, _ := s.Blocked(); !blocked || !strings.Contains(reply, "certificate") {
		t.Errorf("Blocked() = %v, %q; want blocked on the certificate", blocked, reply)
	}
	if got := b.smtp.Received(); got != 0 {
		t.Errorf("devmail received %d messages", got)
	}
}
