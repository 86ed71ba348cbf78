package mail_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"signup/internal/account"
	"signup/internal/devmail"
	"signup/internal/hosted"
	appmail "signup/internal/mail"
)

// A backlog queued before the start goes out in batches: every row once,
// each with its own working token, on one connection per worker.
func TestBacklogIsSentInBatches(t *testing.T) {
	const n = 60
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) {
		c.Workers = 2
		c.Batch = 8
		c.SweepEvery = time.Hour
	})
	ids := b.enqueue(t, n)
	start(t, s)
	b.results.wait(t, "all sent", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeSent) >= n })

	msgs := b.smtp.Messages()
	if len(msgs) != n {
		t.Fatalf("devmail holds %d messages, want %d", len(msgs), n)
	}
	tokens := map[string]string{} // token -> recipient
	for _, m := range msgs {
		var token string
		for _, l := range m.Links {
			if match := tokenLink.FindStringSubmatch(l); match != nil {
				token = match[1]
			}
		}
		if token == "" {
			t.Fatalf("message to %v carries no token link: %v", m.To, m.Links)
		}
		if other, dup := tokens[token]; dup {
			t.Fatalf("%v and %s got the same token", m.To, other)
		}
		tokens[token] = m.To[0]
	}
	for token, rcpt := range tokens {
		hash, ok := account.HashToken(token)
		if !ok {
			t.Fatalf("token for %s is not valid", rcpt)
		}
		sum := sha256.Sum256([]byte(token))
		if string(hash) != string(sum[:]) {
			t.Fatalf("token hash mismatch")
		}
		var email string
		if err := b.db.Pool().QueryRow(t.Context(), `
			SELECT a.email FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE t.hash = $1`, hash).Scan(&email); err != nil {
			t.Fatalf("token mailed to %s is not stored: %v", rcpt, err)
		}
		if email != rcpt {
			t.Errorf("token mailed to %s confirms %s", rcpt, email)
		}
	}
	for _, id := range ids {
		if r := b.row(t, id); r.Status != "sent" || r.Attempts != 1 || r.SentAt == nil {
			t.Errorf("outbox row %d = %+v", id, r)
		}
	}
	if got := b.smtp.Connections(); got > 2 {
		t.Errorf("%d connections for 2 workers", got)
	}
}

// A batch that outlasts the lease it was claimed with renews it, so that
// another instance's sweep, which takes expired leases, never sends its
// rows a second time.
func TestLongBatchKeepsItsLeases(t *testing.T) {
	const n = 8
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) {
		c.Workers = 1
		c.Batch = n
		c.SendTimeout = 200 * time.Millisecond
		c.Lease = 400 * time.Millisecond
		c.SweepEvery = time.Hour
	})
	// Each message takes a quarter of SendTimeout, so the batch takes
	// five times as long as its first lease.
	b.smtp.SetFaults(devmail.Faults{Latency: 50 * time.Millisecond})
	ids := b.enqueue(t, n)
	start(t, s)
	if err := b.smtp.WaitAttempts(testContext(t), 1); err != nil {
		t.Fatal(err)
	}

	// The other instance sweeps often and would take any expired lease.
	otherCfg := b.cfg
	otherCfg.Instance = "other-" + t.Name()
	otherCfg.Queue = hosted.NewQueue[appmail.Job](16)
	otherCfg.SweepEvery = 10 * time.Millisecond
	other := newSender(t, otherCfg)
	start(t, other)

	b.results.wait(t, "all sent", func(r []appmail.Result) bool { return count(r, 0, appmail.OutcomeSent) >= n })
	if err := other.Stop(testContext(t)); err != nil {
		t.Fatal(err)
	}
	perRecipient := map[string]int{}
	for _, m := range b.smtp.Messages() {
		perRecipient[m.To[0]]++
	}
	for rcpt, k := range perRecipient {
		if k != 1 {
			t.Errorf("%s got %d messages", rcpt, k)
		}
	}
	if len(perRecipient) != n || b.smtp.Received() != n {
		t.Errorf("%d recipients, %d received; want %d each", len(perRecipient), b.smtp.Received(), n)
	}
	for _, id := range ids {
		if r := b.row(t, id); r.Status != "sent" || r.Attempts != 1 {
			t.Errorf("outbox row %d = %+v", id, r)
		}
	}
}
