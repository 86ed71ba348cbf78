package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"signup/internal/store"
)

// TestStatusQueries: what the status dashboard reads, over rows placed at
// known times.
func TestStatusQueries(t *testing.T) {
	db, o, now := outboxSetup(t)
	ctx := t.Context()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}

	if _, ok, _, err := o.OldestPending(ctx); ok || err != nil {
		t.Fatalf("OldestPending on an empty outbox: %v, %v", ok, err)
	}
	old := queued(t, db, "old@example.com", now.Add(-2*time.Hour))
	queued(t, db, "new@example.com", now.Add(-time.Minute))
	if at, ok, atLeast, err := o.OldestPending(ctx); !ok || atLeast || err != nil || !at.Equal(now.Add(-2*time.Hour)) {
		t.Fatalf("OldestPending = %v, %v, %v, %v; want exactly two hours ago", at, ok, atLeast, err)
	}

	// Sends per minute: two in the current minute, one three minutes ago,
	// one before the window.
	minute := now.Truncate(time.Minute)
	for i, at := range []time.Time{minute.Add(time.Second), minute.Add(3 * time.Second), minute.Add(-3*time.Minute + time.Second), now.Add(-2 * time.Hour)} {
		id := queued(t, db, "sent"+string(rune('a'+i))+"@example.com", now.Add(-3*time.Hour))
		exec(`UPDATE outbox SET status = 'sent', sent_at = $2 WHERE id = $1`, id, at)
	}
	counts, err := o.SentPerMinute(ctx, now.Add(-4*time.Minute), now)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, 1, 0, 0, 2}; !slices.Equal(counts, want) {
		t.Errorf("SentPerMinute = %v, want %v", counts, want)
	}

	// Failures, newest first, with their error; a retry puts one back.
	exec(`UPDATE outbox SET status = 'failed', attempts = 12, last_error = '550 no such user' WHERE id = $1`, old)
	fs, err := o.Failures(ctx, 20)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Failures = %+v, %v; want one", fs, err)
	}
	if f := fs[0]; f.ID != old || f.Email != "old@example.com" || f.Attempts != 12 || f.LastError != "550 no such user" || f.Kind != "confirm" {
		t.Errorf("failure %+v", f)
	}
	if err := o.RetryFailed(ctx, old, now); err != nil {
		t.Fatal(err)
	}
	var status string
	var attempts int
	var next time.Time
	if err := db.Pool().QueryRow(ctx, `SELECT status, attempts, next_attempt_at FROM outbox WHERE id = $1`, old).Scan(&status, &attempts, &next); err != nil {
		t.Fatal(err)
	}
	if status != "pending" || attempts != 0 || !next.Equal(now) {
		t.Errorf("after RetryFailed: %s, %d attempts, due %v; want pending, 0, now", status, attempts, next)
	}
	if err := o.RetryFailed(ctx, old, now); !errors.Is(err, store.ErrNotFailed) {
		t.Errorf("second RetryFailed: %v, want ErrNotFailed", err)
	}

	// The last successful purge: not a failed one, not a dry one.
	if _, ok, err := db.Purges().LastSuccess(ctx); ok || err != nil {
		t.Fatalf("LastSuccess with no run: %v, %v", ok, err)
	}
	exec(`INSERT INTO purge_runs (instance, started_at, finished_at, dry_run, error) VALUES
		('a', $1, $2, false, NULL), ('a', $1, $3, false, 'boom'), ('a', $1, $4, true, NULL), ('a', $1, NULL, false, NULL)`,
		now.Add(-time.Hour), now.Add(-50*time.Minute), now.Add(-40*time.Minute), now.Add(-30*time.Minute))
	if at, ok, err := db.Purges().LastSuccess(ctx); !ok || err != nil || !at.Equal(now.Add(-50*time.Minute)) {
		t.Errorf("LastSuccess = %v, %v, %v; want 50 minutes ago", at, ok, err)
	}
}
