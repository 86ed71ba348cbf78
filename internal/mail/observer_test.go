package mail_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"signup/internal/account"
	"signup/internal/devmail"
	"signup/internal/mail"
)

// observer records what a mail.Observer is told.
type observer struct {
	mu         sync.Mutex
	waits      []time.Duration
	attempts   []string
	blocked    []string // "blocked: reply" and "unblocked"
	suppressed int
}

func (o *observer) Blocked(blocked bool, reply string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if blocked {
		o.blocked = append(o.blocked, "blocked: "+reply)
	} else {
		o.blocked = append(o.blocked, "unblocked")
	}
}

func (o *observer) Suppressed() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.suppressed++
}

func (o *observer) Dequeued(wait time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waits = append(o.waits, wait)
}

func (o *observer) Attempted(kind account.MailKind, outcome mail.Outcome, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if took <= 0 {
		outcome += "(no duration)"
	}
	o.attempts = append(o.attempts, string(kind)+" "+string(outcome))
}

// TestObserverHearsWaitsAndAttempts: the observer hears of every job taken
// from the queue, with its wait, and of every settled attempt with its
// outcome, before OnResult.
func TestObserverHearsWaitsAndAttempts(t *testing.T) {
	obs := &observer{}
	s, b := setup(t, devmail.Config{}, func(c *mail.Config) { c.Observer = obs })
	b.smtp.FailNext(1, 451)
	start(t, s)
	enqueued := time.Now()
	id := b.enqueue(t, 1)[0]
	b.results.wait(t, "sent", func(r []mail.Result) bool { return count(r, id, mail.OutcomeSent) == 1 })

	obs.mu.Lock()
	defer obs.mu.Unlock()
	if got := strings.Join(obs.attempts, ", "); got != "confirm retry, confirm sent" {
		t.Errorf("attempts observed: %s; want confirm retry, confirm sent", got)
	}
	// The signup's job, and the sweep's for the retry.
	if len(obs.waits) < 2 {
		t.Fatalf("%d queue waits observed, want at least 2", len(obs.waits))
	}
	for _, w := range obs.waits {
		if w < 0 || w > time.Since(enqueued) {
			t.Errorf("queue wait %v, not within the test's %v", w, time.Since(enqueued))
		}
	}
}
