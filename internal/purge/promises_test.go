package purge_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/purge"
)

// Warnings count toward the safety limit like deletions: a short
// INACTIVE_RETENTION once warned 300 of 303 accounts without stopping.
func TestWarningsCountTowardTheLimit(t *testing.T) {
	p, b := setup(t, purge.Config{})
	b.exec(t, `INSERT INTO accounts (email, password_hash, created_at, confirmed_at, last_seen_at)
		SELECT 'w' || i || '@example.test', 'x', $1, $1, $1 FROM generate_series(1, 300) i`,
		t0.Add(-inactiveRetention))
	b.addAccounts(t, 0, 3)
	before := b.snapshot(t)

	_, err := p.RunOnce(t.Context(), purge.Options{})
	var lim *purge.LimitError
	if !errors.As(err, &lim) || lim.Affected != 300 || lim.Total != 303 {
		t.Fatalf("err %v, want the safety limit at 300 of 303", err)
	}
	if after := b.snapshot(t); after != before {
		t.Fatalf("the stopped run changed %s into %s", before, after)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE kind = 'inactive_warning'`); n != 0 {
		t.Fatalf("%d warnings queued by a run the limit stopped", n)
	}
}

// --max caps a forced run: deletions and warnings together.
func TestMaxCapsAForcedRun(t *testing.T) {
	p, b := setup(t, purge.Config{BatchSize: 7})
	b.addAccounts(t, 151, 149)
	for range 5 {
		b.addAccount(t, confirmed(t0.Add(-inactiveRetention)))
	}
	got := runOnce(t, p, purge.Options{Force: true, Max: 50})
	if got.Unconfirmed != 50 || got.Warned != 0 {
		t.Fatalf("forced run with max 50: %+v, want 50 deleted and none warned", got)
	}
	got = runOnce(t, p, purge.Options{Force: true, Max: 103})
	if got.Unconfirmed != 101 || got.Warned != 2 {
		t.Fatalf("second run with max 103: %+v, want the other 101 deleted and 2 warned", got)
	}
	dry, err := p.RunOnce(t.Context(), purge.Options{DryRun: true, Max: 2})
	if err != nil || dry.Counts.Warned != 2 {
		t.Fatalf("dry run with max 2: %+v, %v; want 2 of the 3 left to warn", dry.Counts, err)
	}
}

// A dry run reads: a request may lock any candidate row while it runs.
// It used to run the real DELETEs in one transaction and roll back, holding
// every candidate's lock until its end.
func TestDryRunTakesNoRowLocks(t *testing.T) {
	var b *bundle
	tried := 0
	p, b := setup(t, purge.Config{BatchSize: 2, AfterBatch: func(ctx context.Context, c purge.Category) {
		tried++
		tx, err := b.db.Pool().Begin(ctx)
		if err != nil {
			t.Errorf("begin: %v", err)
			return
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
		rows, err := tx.Query(ctx, `SELECT id FROM accounts ORDER BY id FOR UPDATE NOWAIT`)
		if err == nil {
			_, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		}
		if err != nil {
			t.Errorf("after %s: a request could not lock the accounts: %v", c, err)
		}
	}})
	b.addAccounts(t, 5, 5)
	for range 3 {
		b.addAccount(t, confirmed(t0.Add(-inactiveRetention)))
	}
	before := b.snapshot(t)
	dry, err := p.RunOnce(t.Context(), purge.Options{DryRun: true})
	if err != nil || dry.Counts.Unconfirmed != 5 || dry.Counts.Warned != 3 {
		t.Fatalf("dry run %+v, %v; want 5 unconfirmed and 3 warned", dry.Counts, err)
	}
	if tried == 0 {
		t.Fatal("the hook never ran: nothing was checked")
	}
	if after := b.snapshot(t); after != before {
		t.Fatalf("the dry run changed %s into %s", before, after)
	}
}

// Unconfirmed retention runs from the later of creation and the last
// confirmation mail sent: a link re-sent five minutes ago, with most of
// its validity left, keeps its account.
func TestUnconfirmedRetentionFromLastMailSent(t *testing.T) {
	p, b := setup(t, purge.Config{})
	old := account{created: t0.Add(-unconfirmedRetention - day)}
	resent := b.addAccount(t, old)
	b.addMail(t, resent, "confirm", "sent", t0.Add(-unconfirmedRetention-day))
	b.addMail(t, resent, "confirm", "sent", t0.Add(-5*time.Minute))
	stale := b.addAccount(t, old)
	b.addMail(t, stale, "confirm", "sent", t0.Add(-unconfirmedRetention-time.Hour))
	// Another kind of mail is no confirmation link.
	other := b.addAccount(t, old)
	b.addMail(t, other, "signup_attempt", "sent", t0.Add(-5*time.Minute))

	dry, err := p.RunOnce(t.Context(), purge.Options{DryRun: true})
	if err != nil || dry.Counts.Unconfirmed != 2 {
		t.Fatalf("dry run %+v, %v; want 2 unconfirmed", dry.Counts, err)
	}
	if got := runOnce(t, p, purge.Options{}); got.Unconfirmed != 2 {
		t.Fatalf("run %+v, want 2 unconfirmed deleted", got)
	}
	if !b.accountExists(t, resent) || b.accountExists(t, stale) || b.accountExists(t, other) {
		t.Fatalf("after the run: re-sent kept %v (want true), stale kept %v, other kept %v (want false)",
			b.accountExists(t, resent), b.accountExists(t, stale), b.accountExists(t, other))
	}
}
