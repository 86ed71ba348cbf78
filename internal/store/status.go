package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/account"
)

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
// when no row is pending.
func (o *Outbox) OldestPending(ctx context.Context) (t time.Time, ok bool, err error) {
	var oldest *time.Time
	err = o.db.pool.QueryRow(ctx, `SELECT min(created_at) FROM outbox WHERE status = 'pending'`).Scan(&oldest)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("find oldest pending outbox row: %w", interpret(err))
	}
	if oldest == nil {
		return time.Time{}, false, nil
	}
	return *oldest, true, nil
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
