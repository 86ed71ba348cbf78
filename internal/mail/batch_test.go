package mail_test

import (
	"crypto/sha256"
	"sync"
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

// stepClock is a clock that moves on by step each time it is read: the
// sender's notion of time (leases, their renewal) runs on it, not on the
// wall clock, so a loaded machine changes nothing but how fast it goes.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// A batch that outlasts the lease it was claimed with renews it, so that
// another instance's sweep, which takes expired leases, never sends its
// rows a second time. Both instances read one driven clock, which the
// other instance's frequent sweeps move on by about five leases a second,
// far more than the batch takes to send.
func TestLongBatchKeepsItsLeases(t *testing.T) {
	const n = 8
	// An hour ahead: every row signed up now is due.
	clock := &stepClock{t: time.Now().Add(time.Hour), step: 50 * time.Millisecond}
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) {
		c.Workers = 1
		c.Batch = n
		c.Lease = 10 * time.Second
		c.SendTimeout = 5 * time.Second
		c.SweepEvery = time.Hour
		c.Now = clock.Now
	})
	// Each message is held a while, so the batch spans many leases of the
	// driven clock.
	b.smtp.SetFaults(devmail.Faults{Latency: 500 * time.Millisecond})
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
		// A row that waited in the queue for most of its lease (by the
		// driven clock) is claimed again, which counts a take: what counts
		// here is that each went out once.
		if r := b.row(t, id); r.Status != "sent" {
			t.Errorf("outbox row %d = %+v", id, r)
		}
	}
}
