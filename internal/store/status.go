package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/account"
)

// exactUpTo is the most rows of one status the status queries count or
// read one by one; past it they estimate, so that a scrape and a page of
// the dashboard stay cheap with millions of outbox rows.
const exactUpTo = 1000

// OutboxStatusCounts are the outbox rows per status for the status page and
// the metrics: exact up to exactUpTo rows of a status, estimated past it.
type OutboxStatusCounts struct {
	OutboxCounts
	// Estimated says which counts are estimates.
	Estimated struct{ Pending, Sending, Sent, Failed, Suppressed bool }
}

// StatusCounts counts outbox rows per status, cheaply at any size. Each
// status is counted from its partial index up to exactUpTo+1 rows; a status
// with more is estimated from PostgreSQL's statistics (its share of the
// rows in pg_stats, times the table's row count from pg_class scaled to its
// current size, as the planner does), and never below what was counted. A
// table never analyzed is counted exactly.
func (o *Outbox) StatusCounts(ctx context.Context) (OutboxStatusCounts, error) {
	var c OutboxStatusCounts
	err := o.db.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE status = 'pending' LIMIT $1) x),
		       (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE status = 'sending' LIMIT $1) x),
		       (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE status = 'sent' LIMIT $1) x),
		       (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE status = 'failed' LIMIT $1) x),
		       (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE status = 'suppressed' LIMIT $1) x)`,
		exactUpTo+1).Scan(&c.Pending, &c.Sending, &c.Sent, &c.Failed, &c.Suppressed)
	if err != nil {
		return c, fmt.Errorf("count outbox rows: %w", interpret(err))
	}
	over := map[string]*int64{}
	for status, n := range map[string]*int64{"pending": &c.Pending, "sending": &c.Sending, "sent": &c.Sent, "failed": &c.Failed, "suppressed": &c.Suppressed} {
		if *n > exactUpTo {
			over[status] = n
		}
	}
	if len(over) == 0 {
		return c, nil
	}
	est, err := o.estimateStatuses(ctx)
	if err != nil {
		return c, err
	}
	flags := map[string]*bool{"pending": &c.Estimated.Pending, "sending": &c.Estimated.Sending, "sent": &c.Estimated.Sent, "failed": &c.Estimated.Failed, "suppressed": &c.Estimated.Suppressed}
	for status, n := range over {
		e, ok := est[status]
		if !ok {
			// No statistics to go by: count this one exactly.
			if err := o.db.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE status = $1`, status).Scan(n); err != nil {
				return c, fmt.Errorf("count %s outbox rows: %w", status, interpret(err))
			}
			continue
		}
		*n = max(*n, e)
		*flags[status] = true
	}
	return c, nil
}

// estimateStatuses estimates the rows of each status PostgreSQL has
// statistics for: the status's frequency among the most common values of
// outbox.status, times the row count of pg_class scaled by the table's
// current size in pages.
func (o *Outbox) estimateStatuses(ctx context.Context) (map[string]int64, error) {
	rows, err := o.db.pool.Query(ctx, `
		SELECT s.status, (s.freq * t.total)::bigint
		FROM (
			SELECT CASE WHEN c.relpages > 0 AND c.reltuples >= 0
			            THEN c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::int)
			       END AS total
			FROM pg_class c WHERE c.oid = 'outbox'::regclass
		) t,
		LATERAL (
			SELECT v.status, v.freq
			FROM pg_stats st,
			     unnest(st.most_common_vals::text::text[], st.most_common_freqs) AS v(status, freq)
			WHERE st.schemaname = current_schema() AND st.tablename = 'outbox' AND st.attname = 'status'
		) s
		WHERE t.total IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("estimate outbox rows: %w", interpret(err))
	}
	est := map[string]int64{}
	var (
		status string
		n      int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error { est[status] = n; return nil }); err != nil {
		return nil, fmt.Errorf("estimate outbox rows: %w", interpret(err))
	}
	return est, nil
}

// OutboxFailure is an outbox row marked failed, for the status page.
type OutboxFailure struct {
	// ID is the outbox row's id.
	ID int64 `db:"id"`
	// Kind is the email it was to send.
	Kind account.MailKind `db:"kind"`
	// Email is the recipient, the account's address.
	Email string `db:"email"`
	// Attempts is how many attempts were made.
	Attempts int `db:"attempts"`
	// CreatedAt is when the email was queued.
	CreatedAt time.Time `db:"created_at"`
	// LastError is the SMTP server's answer, or what else went wrong.
	LastError string `db:"last_error"`
}

// Failures returns the n most recent failed rows, newest first.
func (o *Outbox) Failures(ctx context.Context, n int) ([]OutboxFailure, error) {
	rows, err := o.db.pool.Query(ctx, `
		SELECT o.id, o.kind, coalesce(o.recipient, a.email, '') AS email, o.attempts, o.created_at, coalesce(o.last_error, '') AS last_error
		FROM outbox o LEFT JOIN accounts a ON a.id = o.account_id
		WHERE o.status = 'failed'
		ORDER BY o.id DESC
		LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("list failed outbox rows: %w", interpret(err))
	}
	fs, err := pgx.CollectRows(rows, pgx.RowToStructByName[OutboxFailure])
	if err != nil {
		return nil, fmt.Errorf("list failed outbox rows: %w", interpret(err))
	}
	return fs, nil
}

// OldestPending returns when the oldest pending row was queued; ok is false
// when no row is pending. It reads at most exactUpTo+1 pending rows, the
// earliest due, from their partial index, so it stays cheap however large
// the outbox and its backlog: with more pending rows than that, t is the
// oldest among the earliest due (new rows are due when queued, so those
// are the oldest but for retries) and atLeast is true, meaning the oldest
// pending row is at least that old.
func (o *Outbox) OldestPending(ctx context.Context) (t time.Time, ok, atLeast bool, err error) {
	var (
		oldest *time.Time
		n      int64
	)
	err = o.db.pool.QueryRow(ctx, `
		SELECT min(created_at), count(*) FROM (
			SELECT created_at FROM outbox WHERE status = 'pending' ORDER BY next_attempt_at LIMIT $1) p`,
		exactUpTo+1).Scan(&oldest, &n)
	if err != nil {
		return time.Time{}, false, false, fmt.Errorf("find oldest pending outbox row: %w", interpret(err))
	}
	if oldest == nil {
		return time.Time{}, false, false, nil
	}
	return *oldest, true, n > exactUpTo, nil
}

// SentPerMinute counts the rows sent in each whole minute from from (cut
// down to its minute) until to, oldest first: one count per minute, zeros
// included. Every instance's sends count, as they share the outbox.
func (o *Outbox) SentPerMinute(ctx context.Context, from, to time.Time) ([]int64, error) {
	from = from.Truncate(time.Minute)
	n := int(to.Sub(from)/time.Minute) + 1
	if n <= 0 {
		return nil, nil
	}
	rows, err := o.db.pool.Query(ctx, `
		SELECT floor(extract(epoch FROM sent_at - $1) / 60)::int AS minute, count(*)
		FROM outbox
		WHERE status = 'sent' AND sent_at >= $1 AND sent_at <= $2
		GROUP BY 1`, from, to)
	if err != nil {
		return nil, fmt.Errorf("count sent mail per minute: %w", interpret(err))
	}
	counts := make([]int64, n)
	var minute int
	var count int64
	_, err = pgx.ForEachRow(rows, []any{&minute, &count}, func() error {
		if minute >= 0 && minute < n {
			counts[minute] = count
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count sent mail per minute: %w", interpret(err))
	}
	return counts, nil
}

// ErrNotFailed means RetryFailed found no failed row with that id.
var ErrNotFailed = errors.New("store: outbox row is not failed")

// RetryFailed puts failed row id back to pending, due at now, with its
// attempts counted from zero again; it keeps last_error until the next
// outcome. It returns ErrNotFailed when the row is gone or not failed (an
// operator clicked twice, or another did first).
func (o *Outbox) RetryFailed(ctx context.Context, id int64, now time.Time) error {
	tag, err := o.db.pool.Exec(ctx, `
		UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2,
			lease_until = NULL, leased_by = NULL
		WHERE id = $1 AND status = 'failed'`, id, now)
	if err != nil {
		return fmt.Errorf("retry outbox row %d: %w", id, interpret(err))
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFailed
	}
	return nil
}

// LastSuccess returns when the last successful purge run (scheduled or
// manual, not dry) of any instance finished; ok is false when none has.
func (p *Purges) LastSuccess(ctx context.Context) (t time.Time, ok bool, err error) {
	var last *time.Time
	err = p.db.pool.QueryRow(ctx, `
		SELECT max(finished_at) FROM purge_runs
		WHERE finished_at IS NOT NULL AND error IS NULL AND NOT dry_run`).Scan(&last)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("find last successful purge: %w", interpret(err))
	}
	if last == nil {
		return time.Time{}, false, nil
	}
	return *last, true, nil
}
