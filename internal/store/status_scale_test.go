package store_test

import (
	"testing"
	"time"
)

// The scrape and the dashboard counted the whole outbox (30 days of rows)
// at every refresh. Counts are now exact up to 1,000 rows of a status and
// estimated from the statistics past that (make bench times them at 10
// million rows).
func TestStatusCountsStayCheap(t *testing.T) {
	db, o, now := outboxSetup(t)
	ctx := t.Context()
	id := queued(t, db, "bulk@example.com", now.Add(-time.Hour))
	var account int64
	if err := db.Pool().QueryRow(ctx, `SELECT account_id FROM outbox WHERE id = $1`, id).Scan(&account); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `INSERT INTO outbox (account_id, kind, status, attempts, created_at, next_attempt_at, sent_at)
		SELECT $1, 'confirm', CASE WHEN i <= 4 THEN 'failed' ELSE 'sent' END, 1, $2, $2, $2
		FROM generate_series(1, 5000) i`, account, now.Add(-2*time.Hour))

	// Never analyzed: no statistics to estimate from, so exact.
	c, err := o.StatusCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pending != 1 || c.Sent != 4996 || c.Failed != 4 || c.Estimated.Sent {
		t.Fatalf("without statistics: %+v, want 1 pending, 4996 sent, 4 failed, exact", c)
	}
	exec(t, db, `ANALYZE outbox`)
	c, err = o.StatusCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pending != 1 || c.Failed != 4 || c.Estimated.Pending || c.Estimated.Failed {
		t.Fatalf("small counts %+v, want exact", c)
	}
	if !c.Estimated.Sent || c.Sent < 4500 || c.Sent > 5500 {
		t.Fatalf("sent %d (estimated %v), want an estimate near 4996", c.Sent, c.Estimated.Sent)
	}

}
