package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"signup/internal/purge"
	"signup/internal/store"
	"signup/internal/store/storetest"
)

var purgeNow = time.Date(2030, 6, 1, 3, 0, 0, 0, time.UTC)

// purgeCut are the cut-offs of a run at purgeNow with the default policy.
var purgeCut = purge.Cutoffs{
	Now:         purgeNow,
	Unconfirmed: purgeNow.Add(-purge.DefaultUnconfirmedRetention),
	Warn:        purgeNow.Add(-(purge.DefaultInactiveRetention - purge.DefaultInactiveWarning)),
	Dormant:     purgeNow.Add(-purge.DefaultInactiveWarning),
	Tokens:      purgeNow.Add(-purge.DefaultTokenGrace),
	Outbox:      purgeNow.Add(-purge.DefaultOutboxRetention),
}

// lock takes the purge lock or fails the test.
func lock(t *testing.T, p *store.Purges) purge.Session {
	t.Helper()
	s, ok, err := p.Lock(t.Context(), purge.LockOptions{StatementTimeout: 5 * time.Second})
	if err != nil || !ok {
		t.Fatalf("lock: ok %v, %v", ok, err)
	}
	t.Cleanup(func() { s.Release(context.Background()) })
	return s
}

// exec runs fixture SQL.
func exec(t *testing.T, db *store.DB, sql string, args ...any) {
	t.Helper()
	if _, err := db.Pool().Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// count returns a count(*) query's answer.
func count(t *testing.T, db *store.DB, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Pool().QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// drain runs batches of c until done and returns the total and the number
// of batches.
func drain(t *testing.T, s purge.Session, c purge.Category, limit int) (total int64, batches int) {
	t.Helper()
	var from purge.Cursor
	for {
		b, err := s.Batch(t.Context(), c, purgeCut, from, limit)
		if err != nil {
			t.Fatalf("batch %s: %v", c, err)
		}
		if b.N > int64(limit) {
			t.Fatalf("batch %s treated %d rows, limit %d", c, b.N, limit)
		}
		total += b.N
		batches++
		if b.Done {
			return total, batches
		}
		if batches > 1000 {
			t.Fatal("batches do not end")
		}
		from = b.Next
	}
}

func TestPurgeLockIsExclusiveAcrossPools(t *testing.T) {
	t.Parallel()
	url := storetest.URL(t)
	var dbs [2]*store.DB
	for i := range dbs {
		db, err := store.Open(t.Context(), url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		dbs[i] = db
	}
	ctx := t.Context()
	first := lock(t, dbs[0].Purges())
	if _, ok, err := dbs[1].Purges().Lock(ctx, purge.LockOptions{}); ok || err != nil {
		t.Fatalf("second lock while held: ok %v, %v; want refused", ok, err)
	}
	if _, ok, err := dbs[0].Purges().Lock(ctx, purge.LockOptions{}); ok || err != nil {
		t.Fatalf("second lock from the same pool: ok %v, %v; want refused", ok, err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if n := count(t, dbs[0], `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); n != 0 {
		t.Fatalf("%d advisory locks left after release", n)
	}
	second := lock(t, dbs[1].Purges())
	second.Release(ctx)
}

func TestPurgeBatchesWalkTiesAndSkipProtected(t *testing.T) {
	db, _, _ := outboxSetup(t)
	old := purgeCut.Unconfirmed.Add(-time.Hour)
	// 25 accounts signed up in the same microsecond; every fifth one still
	// has its confirmation pending.
	exec(t, db, `INSERT INTO accounts (email, password_hash, created_at)
		SELECT 'u' || i || '@example.test', 'x', $1 FROM generate_series(1, 25) i`, old)
	exec(t, db, `INSERT INTO outbox (account_id, kind, status, created_at, next_attempt_at)
		SELECT id, 'confirm', CASE WHEN id % 5 = 0 THEN 'pending' ELSE 'sent' END, $1, $1 FROM accounts`, old)

	s := lock(t, db.Purges())
	total, batches := drain(t, s, purge.Unconfirmed, 4)
	if total != 20 || batches != 6 {
		t.Fatalf("deleted %d in %d batches, want 20 in 6 (5 full, 1 empty)", total, batches)
	}
	if n := count(t, db, `SELECT count(*) FROM accounts`); n != 5 {
		t.Fatalf("%d accounts left, want the 5 with pending mail", n)
	}
	if n := count(t, db, `SELECT count(*) FROM outbox WHERE status = 'sent'`); n != 0 {
		t.Fatalf("%d outbox rows of deleted accounts left: no cascade", n)
	}
}

func TestPurgeCountsLeaveCascadesOut(t *testing.T) {
	db, _, _ := outboxSetup(t)
	old := purgeCut.Unconfirmed.Add(-time.Hour)
	exec(t, db, `INSERT INTO accounts (email, password_hash, created_at)
		SELECT 'u' || i || '@example.test', 'x', $1 FROM generate_series(1, 3) i`, old)
	exec(t, db, `INSERT INTO tokens (hash, account_id, purpose, created_at, expires_at)
		SELECT sha256(id::text::bytea), id, 'confirm', $1, $1 FROM accounts`, old)

	s := lock(t, db.Purges())
	if n, err := s.Count(t.Context(), purge.Unconfirmed, purgeCut); err != nil || n != 3 {
		t.Fatalf("dry run would delete %d accounts, %v; want 3", n, err)
	}
	// The tokens go with their accounts, so they are not counted again.
	if n, err := s.Count(t.Context(), purge.Tokens, purgeCut); err != nil || n != 0 {
		t.Fatalf("dry run would delete %d more tokens, %v; want 0 (cascaded)", n, err)
	}
	if err := s.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM accounts`) + count(t, db, `SELECT count(*) FROM tokens`); n != 6 {
		t.Fatalf("%d accounts and tokens after the dry run, want all 6", n)
	}
}

func TestPurgeRunRecords(t *testing.T) {
	db, _, _ := outboxSetup(t)
	p := db.Purges()
	ctx := t.Context()
	tick := purgeNow
	record := func(r purge.Report, finish bool) int64 {
		t.Helper()
		id, err := p.StartRun(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		r.ID = id
		if finish {
			r.FinishedAt = r.StartedAt.Add(time.Minute)
			if err := p.FinishRun(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	done := func(tick time.Time) bool {
		t.Helper()
		ok, err := p.TickDone(ctx, tick)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	// Runs that do not serve the tick: manual, dry, failed, unfinished.
	record(purge.Report{Instance: "a", StartedAt: tick}, true)
	record(purge.Report{Instance: "a", Scheduled: tick, StartedAt: tick, DryRun: true}, true)
	record(purge.Report{Instance: "a", Scheduled: tick, StartedAt: tick, Error: "interrupted"}, true)
	record(purge.Report{Instance: "a", Scheduled: tick, StartedAt: tick}, false)
	if done(tick) {
		t.Fatal("tick served by a manual, dry, failed or unfinished run")
	}
	want := purge.Report{
		Instance: "b", Scheduled: tick, StartedAt: tick.Add(time.Second), Forced: true,
		Counts: purge.Counts{Unconfirmed: 1, Dormant: 2, Warned: 3, Sessions: 4, Tokens: 5, Outbox: 6},
	}
	want.ID = record(want, true)
	want.FinishedAt = want.StartedAt.Add(time.Minute)
	if !done(tick) || !done(tick.Add(-24*time.Hour)) {
		t.Fatal("tick (or an earlier one) not served by a successful run")
	}
	if done(tick.Add(time.Second)) {
		t.Fatal("a later tick served")
	}

	runs, err := p.LastRuns(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	got := runs[0]
	if !got.Scheduled.Equal(want.Scheduled) || !got.StartedAt.Equal(want.StartedAt) || !got.FinishedAt.Equal(want.FinishedAt) {
		t.Fatalf("times %v %v %v, want %v %v %v", got.Scheduled, got.StartedAt, got.FinishedAt, want.Scheduled, want.StartedAt, want.FinishedAt)
	}
	got.Scheduled, got.StartedAt, got.FinishedAt = want.Scheduled, want.StartedAt, want.FinishedAt
	if got != want {
		t.Fatalf("last run %+v, want %+v", got, want)
	}
	if runs[1].FinishedAt.IsZero() != true || runs[1].Counts != (purge.Counts{}) {
		t.Fatalf("unfinished run read as %+v", runs[1])
	}
}

// TestPurgePlansUseIndexes checks, on enough rows for the planner to care,
// that each batch walks the index it was written for rather than scanning
// its table.
func TestPurgePlansUseIndexes(t *testing.T) {
	db, _, _ := outboxSetup(t)
	recent := purgeNow.Add(-time.Hour)
	// 20,000 active accounts with their mail, sessions and tokens, and a
	// few of each kind of candidate.
	exec(t, db, `INSERT INTO accounts (email, password_hash, created_at, confirmed_at, last_seen_at, warned_at)
		SELECT 'u' || i || '@example.test', 'x', $1, $1, $1,
		       CASE WHEN i % 1000 = 0 THEN $1::timestamptz END
		FROM generate_series(1, 20000) i`, recent)
	exec(t, db, `UPDATE accounts SET confirmed_at = NULL, last_seen_at = NULL, created_at = $1 WHERE id % 997 = 0`,
		purgeCut.Unconfirmed.Add(-time.Hour))
	exec(t, db, `UPDATE accounts SET last_seen_at = $1 WHERE id % 991 = 0 AND warned_at IS NULL`, purgeCut.Warn.Add(-time.Hour))
	exec(t, db, `INSERT INTO outbox (account_id, kind, status, created_at, next_attempt_at, sent_at)
		SELECT id, 'confirm', CASE WHEN id % 500 = 0 THEN 'failed' ELSE 'sent' END, $1, $1, $1 FROM accounts`, recent)
	exec(t, db, `INSERT INTO sessions (hash, account_id, created_at, last_used_at, expires_at, absolute_expires_at)
		SELECT sha256(id::text::bytea), id, $1, $1, $2, $2 FROM accounts`, recent, purgeNow.Add(time.Hour))
	// Tokens: most expired (and used) two days ago, a few live ones.
	exec(t, db, `INSERT INTO tokens (hash, account_id, purpose, created_at, expires_at, used_at)
		SELECT sha256(id::text::bytea), id, 'confirm', $1::timestamptz, $1::timestamptz + id * interval '1 second', $1::timestamptz FROM accounts`,
		purgeNow.Add(-48*time.Hour))
	exec(t, db, `UPDATE tokens SET expires_at = $1::timestamptz + interval '1 hour', used_at = NULL
		FROM accounts a WHERE a.id = tokens.account_id AND a.id % 200 = 0`, purgeNow)
	exec(t, db, `
		INSERT INTO mail_quota (address, day_start, day_count, allowed, updated_at)
		SELECT 'q' || g || '@example.com', $1::timestamptz - interval '2 days' + g * interval '1 second', 1, true, $1::timestamptz
		FROM generate_series(1, 20000) g`, purgeNow)
	exec(t, db, `ANALYZE`)

	want := map[purge.Category][]string{
		purge.Unconfirmed: {"accounts_unconfirmed_idx"},
		purge.Dormant:     {"accounts_warned_idx"},
		purge.Warned:      {"accounts_dormant_idx"},
		purge.Sessions:    {"sessions_expires_idx"},
		purge.Tokens:      {"tokens_expires_idx", "tokens_expires_idx"},
		purge.Outbox:      {"outbox_sent_idx", "outbox_failed_idx", "mail_quota_day_idx"},
	}
	for _, c := range purge.Categories {
		plans, err := db.Purges().Plans(t.Context(), c, purgeCut, purge.DefaultBatchSize)
		if err != nil {
			t.Fatal(err)
		}
		for i, plan := range plans {
			if !strings.Contains(plan, want[c][i]) {
				t.Errorf("%s batch (arm %d) does not use %s:\n%s", c, i, want[c][i], plan)
			}
			// The candidate pick must not scan the table (cascades and the
			// pending-mail check go by account_id indexes).
			if strings.Contains(plan, "Seq Scan") {
				t.Errorf("%s batch (arm %d) scans a table:\n%s", c, i, plan)
			}
		}
	}
}

// The mail limits of addresses nobody asked to mail for a day (their day
// window started two days ago) go with the outbox category, in batches.
func TestPurgeMailQuota(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	exec(t, db, `
		INSERT INTO mail_quota (address, day_start, day_count, allowed, updated_at)
		SELECT 'old' || g || '@example.com', $1::timestamptz - interval '49 hours', 1, true, $1::timestamptz
		FROM generate_series(1, 7) g
		UNION ALL
		SELECT 'new' || g || '@example.com', $1::timestamptz - interval '47 hours', 1, true, $1::timestamptz
		FROM generate_series(1, 3) g`, purgeNow)
	s := lock(t, db.Purges())
	if n, batches := drain(t, s, purge.Outbox, 2); n != 7 || batches < 4 {
		t.Errorf("purged %d mail_quota rows in %d batches, want 7 in 4 or more", n, batches)
	}
	if n := count(t, db, `SELECT count(*) FROM mail_quota WHERE address LIKE 'new%'`); n != 3 {
		t.Errorf("fresh limits left: %d, want 3", n)
	}
}
