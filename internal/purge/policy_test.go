package purge_test

import (
	"testing"
	"time"

	"signup/internal/purge"
)

// Each retention at its boundary: a row exactly at the cut-off stays, a row a
// second past it goes.
func TestUnconfirmedRetentionBoundary(t *testing.T) {
	p, b := setup(t, purge.Config{})
	cut := t0.Add(-unconfirmedRetention)
	before := b.addAccount(t, account{created: cut.Add(time.Second)})
	at := b.addAccount(t, account{created: cut})
	after := b.addAccount(t, account{created: cut.Add(-time.Second)})
	// A confirmed account as old is not concerned.
	old := b.addAccount(t, confirmed(t0.Add(-time.Hour)))
	b.exec(t, `UPDATE accounts SET created_at = $1 WHERE id = $2`, cut.Add(-day), old)

	if got := runOnce(t, p, purge.Options{}); got != (purge.Counts{Unconfirmed: 1}) {
		t.Fatalf("counts %+v, want 1 unconfirmed", got)
	}
	for id, want := range map[int64]bool{before: true, at: true, after: false, old: true} {
		if got := b.accountExists(t, id); got != want {
			t.Errorf("account %d exists %v, want %v", id, got, want)
		}
	}
}

func TestWarnBoundary(t *testing.T) {
	p, b := setup(t, purge.Config{})
	cut := t0.Add(-(inactiveRetention - inactiveWarning))
	before := b.addAccount(t, confirmed(cut.Add(time.Second)))
	at := b.addAccount(t, confirmed(cut))
	after := b.addAccount(t, confirmed(cut.Add(-time.Second)))
	// Dormant past the whole retention and never warned: warned first,
	// not deleted.
	ancient := b.addAccount(t, confirmed(t0.Add(-2*inactiveRetention)))

	if got := runOnce(t, p, purge.Options{}); got != (purge.Counts{Warned: 2}) {
		t.Fatalf("counts %+v, want 2 warned", got)
	}
	for id, want := range map[int64]bool{before: false, at: false, after: true, ancient: true} {
		warned := b.count(t, `SELECT count(*) FROM accounts WHERE id = $1 AND warned_at = $2`, id, t0) == 1
		mail := b.count(t, `SELECT count(*) FROM outbox WHERE account_id = $1 AND kind = 'inactive_warning'
			AND status = 'pending' AND next_attempt_at = $2 AND created_at = $2`, id, t0) == 1
		if warned != want || mail != want {
			t.Errorf("account %d: warned %v, warning queued %v; want %v", id, warned, mail, want)
		}
	}
	// A second run does not warn again.
	if got := runOnce(t, p, purge.Options{}); got != (purge.Counts{}) {
		t.Fatalf("second run counts %+v, want none", got)
	}
}

func TestDeleteAfterWarningBoundary(t *testing.T) {
	p, b := setup(t, purge.Config{})
	cut := t0.Add(-inactiveWarning)
	seen := t0.Add(-inactiveRetention - day)
	warned := func(at time.Time) int64 {
		a := confirmed(seen)
		a.warned = at
		id := b.addAccount(t, a)
		b.addMail(t, id, "inactive_warning", "sent", at)
		return id
	}
	before := warned(cut.Add(time.Second))
	at := warned(cut)
	after := warned(cut.Add(-time.Second))
	// Seen after the warning (a sign-in clears warned_at, but the purge
	// does not rely on it).
	back := warned(cut.Add(-time.Hour))
	b.exec(t, `UPDATE accounts SET last_seen_at = warned_at + interval '1 minute' WHERE id = $1`, back)

	if got := runOnce(t, p, purge.Options{}); got != (purge.Counts{Dormant: 1}) {
		t.Fatalf("counts %+v, want 1 dormant", got)
	}
	for id, want := range map[int64]bool{before: true, at: true, after: false, back: true} {
		if got := b.accountExists(t, id); got != want {
			t.Errorf("account %d exists %v, want %v", id, got, want)
		}
	}
}

// Mail on its way (pending, retrying, being sent) protects an account; mail
// that was sent, or failed for good, does not.
func TestMailInFlightProtects(t *testing.T) {
	p, b := setup(t, purge.Config{})
	oldSignup := t0.Add(-unconfirmedRetention - day)
	warnedAt := t0.Add(-inactiveWarning - day)
	cases := []struct {
		status  string
		retry   bool
		protect bool
	}{
		{"pending", false, true},
		{"pending", true, true}, // a retry waiting for its time
		{"sending", false, true},
		{"sent", false, false},
		{"failed", false, false},
	}
	type ids struct{ unconfirmed, dormant int64 }
	got := make([]ids, len(cases))
	for i, tc := range cases {
		u := b.addAccount(t, account{created: oldSignup})
		mail := b.addMail(t, u, "confirm", tc.status, oldSignup)
		a := confirmed(t0.Add(-inactiveRetention - day))
		a.warned = warnedAt
		d := b.addAccount(t, a)
		warning := b.addMail(t, d, "inactive_warning", tc.status, warnedAt)
		if tc.retry {
			b.exec(t, `UPDATE outbox SET attempts = 3, last_error = '451 try later', next_attempt_at = $2
				WHERE id IN ($1, $3)`, mail, t0.Add(time.Hour), warning)
		}
		got[i] = ids{u, d}
	}
	runOnce(t, p, purge.Options{})
	for i, tc := range cases {
		for _, id := range []int64{got[i].unconfirmed, got[i].dormant} {
			if exists := b.accountExists(t, id); exists != tc.protect {
				t.Errorf("%s (retry %v): account %d exists %v, want %v", tc.status, tc.retry, id, exists, tc.protect)
			}
		}
	}
}

// The warning, then the deletion; a sign-in in between cancels it.
func TestWarningThenDeletionUnlessSignedIn(t *testing.T) {
	p, b := setup(t, purge.Config{})
	ctx := t.Context()
	seen := t0.Add(-(inactiveRetention - inactiveWarning) - time.Minute)
	stays := b.addAccount(t, confirmed(seen))
	goes := b.addAccount(t, confirmed(seen))
	early := b.addAccount(t, confirmed(seen)) // back before the warning went out

	if got := runOnce(t, p, purge.Options{}); got != (purge.Counts{Warned: 3}) {
		t.Fatalf("first run %+v, want 3 warned", got)
	}
	// The sender sends two warnings; early signs in before its own is sent.
	b.exec(t, `UPDATE outbox SET status = 'sent', sent_at = $1 WHERE account_id IN ($2, $3)`, t0.Add(time.Minute), stays, goes)
	b.clock.Advance(time.Hour)
	if err := b.db.Accounts().SignedIn(ctx, early, b.clock.Now(), time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if b.exists(t, "outbox", "account_id", early) {
		t.Fatal("the unsent warning of an account that signed in is still queued")
	}

	// Not yet: a second before the warning period ends.
	b.clock.AdvanceTo(t0.Add(inactiveWarning))
	if got := runOnce(t, p, purge.Options{}); got != (purge.Counts{}) {
		t.Fatalf("run at the end of the warning %+v, want nothing", got)
	}
	// stays signs in during the warning period.
	if err := b.db.Accounts().SignedIn(ctx, stays, b.clock.Now(), time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Second)
	if got := runOnce(t, p, purge.Options{}); got != (purge.Counts{Dormant: 1}) {
		t.Fatalf("run after the warning %+v, want 1 dormant", got)
	}
	for id, want := range map[int64]bool{stays: true, goes: false, early: true} {
		if got := b.accountExists(t, id); got != want {
			t.Errorf("account %d exists %v, want %v", id, got, want)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM accounts WHERE warned_at IS NOT NULL`); n != 0 {
		t.Fatalf("%d accounts still warned", n)
	}
}

// Sessions, tokens and old outbox rows go at their boundaries; the rows of
// a deleted account go with it.
func TestSessionsTokensOutboxPurged(t *testing.T) {
	p, b := setup(t, purge.Config{})
	live := b.addAccount(t, confirmed(t0.Add(-time.Hour)))
	keep := map[string][][]byte{}
	gone := map[string][][]byte{}

	// Sessions: expired at or before now.
	gone["sessions"] = append(gone["sessions"],
		b.addSession(t, live, t0, t0.Add(day)),
		b.addSession(t, live, t0.Add(-day), t0.Add(-day)))
	keep["sessions"] = append(keep["sessions"], b.addSession(t, live, t0.Add(time.Second), t0.Add(day)))

	// Tokens: expired or used a day (the grace) ago or more.
	grace := t0.Add(-day)
	gone["tokens"] = append(gone["tokens"],
		b.addToken(t, live, grace, time.Time{}),
		b.addToken(t, live, t0.Add(day), grace)) // a long-lived token, used a day ago
	keep["tokens"] = append(keep["tokens"],
		b.addToken(t, live, grace.Add(time.Second), time.Time{}), // expired, still says "expired"
		b.addToken(t, live, t0.Add(day), grace.Add(time.Second)), // used, still says "used"
		b.addToken(t, live, t0.Add(time.Hour), time.Time{}))      // live

	// Outbox: sent or failed more than 30 days ago.
	month := t0.Add(-30 * day)
	var goneMail, keptMail []int64
	goneMail = append(goneMail, b.addMail(t, live, "confirm", "sent", month.Add(-time.Second)),
		b.addMail(t, live, "signup_attempt", "failed", month.Add(-time.Second)))
	keptMail = append(keptMail, b.addMail(t, live, "confirm", "sent", month),
		b.addMail(t, live, "signup_attempt", "failed", month),
		b.addMail(t, live, "signup_attempt", "pending", month.Add(-day)))

	// An unconfirmed account past retention, with an expired token, an
	// expired session and a sent mail: all go by cascade, counted once.
	old := b.addAccount(t, account{created: t0.Add(-unconfirmedRetention - 40*day)})
	b.addToken(t, old, t0.Add(-unconfirmedRetention-39*day), time.Time{})
	b.addSession(t, old, t0.Add(-2*day), t0.Add(-2*day))
	b.addMail(t, old, "confirm", "sent", t0.Add(-unconfirmedRetention-40*day))

	want := purge.Counts{Unconfirmed: 1, Sessions: 2, Tokens: 2, Outbox: 2}
	if got := runOnce(t, p, purge.Options{}); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	for table, hashes := range gone {
		for _, h := range hashes {
			if b.exists(t, table, "hash", h) {
				t.Errorf("%s %s not purged", table, h)
			}
		}
	}
	for table, hashes := range keep {
		for _, h := range hashes {
			if !b.exists(t, table, "hash", h) {
				t.Errorf("%s %s purged too early", table, h)
			}
		}
	}
	for _, id := range goneMail {
		if b.exists(t, "outbox", "id", id) {
			t.Errorf("outbox row %d not purged", id)
		}
	}
	for _, id := range keptMail {
		if !b.exists(t, "outbox", "id", id) {
			t.Errorf("outbox row %d purged too early", id)
		}
	}
	for _, table := range []string{"tokens", "sessions", "outbox"} {
		if b.exists(t, table, "account_id", old) {
			t.Errorf("%s of the deleted account left", table)
		}
	}
}
