package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"signup/internal/purge"
)

// Purges implements purge.Store: the purger's lock, batches and run records.
type Purges struct{ db *DB }

// Purges returns the purge store over db.
func (db *DB) Purges() *Purges { return &Purges{db: db} }

var _ purge.Store = (*Purges)(nil)

// purgeLockKey is the advisory lock that serialises purge runs. Advisory
// locks are per database, so tests on separate databases do not meet.
const purgeLockKey int64 = 0x7075_7267_6572 // "purger"

// Lock implements purge.Store.
func (p *Purges) Lock(ctx context.Context, opts purge.LockOptions) (purge.Session, bool, error) {
	conn, err := p.db.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("acquire purge connection: %w", interpret(err))
	}
	s := &purgeSession{conn: conn, timeout: opts.StatementTimeout}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, purgeLockKey).Scan(&ok); err != nil {
		// Whether the server took the lock is unknown: end the session.
		s.discard()
		return nil, false, fmt.Errorf("take purge lock: %w", interpret(err))
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return s, true, nil
}

// purgeSession is a connection holding the purge lock.
type purgeSession struct {
	conn    *pgxpool.Conn // nil once released
	timeout time.Duration
}

// discard closes the connection, which ends its session and frees any lock
// it holds, and gives it back to the pool, which drops it. A pooled
// connection must never keep the lock.
func (s *purgeSession) discard() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.conn.Conn().Close(ctx) //nolint:errcheck // closed either way
	s.conn.Release()
	s.conn = nil
}

// Release implements purge.Session.
func (s *purgeSession) Release(ctx context.Context) error {
	if s.conn == nil {
		return nil
	}
	_, err := s.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, purgeLockKey)
	if err != nil {
		s.discard()
		return fmt.Errorf("release purge lock: %w", interpret(err))
	}
	s.conn.Release()
	s.conn = nil
	return nil
}

// setStatementTimeout bounds the statements of tx.
func setStatementTimeout(ctx context.Context, tx pgx.Tx, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`, fmt.Sprint(d.Milliseconds()))
	return err
}

// step runs fn in its own transaction under the statement timeout.
func (s *purgeSession) step(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if s.conn == nil {
		return errors.New("purge session released")
	}
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", interpret(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := setStatementTimeout(ctx, tx, s.timeout); err != nil {
		return fmt.Errorf("set statement timeout: %w", interpret(err))
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", interpret(err))
	}
	return nil
}

// The account policies, shared by the count and the batches so that the
// safety limit counts what the batches delete. cut is the cut-off parameter.
//
// Unconfirmed retention runs from the later of the account's creation and
// the last confirmation mail sent to it, so a link re-sent a minute ago is
// not deleted with its account before it could be used.
func unconfirmedWhere(cut string) string {
	return `a.confirmed_at IS NULL AND a.created_at < ` + cut + ` AND ` + noMailInFlight + ` AND NOT EXISTS (
		SELECT 1 FROM outbox o WHERE o.account_id = a.id AND o.kind = 'confirm' AND o.status = 'sent' AND o.sent_at >= ` + cut + `)`
}

// warnWhere: confirmed accounts last seen before the cut, not warned yet.
func warnWhere(cut string) string {
	return `a.confirmed_at IS NOT NULL AND a.warned_at IS NULL AND a.last_seen_at < ` + cut
}

func dormantWhere(cut string) string {
	return `a.warned_at IS NOT NULL AND a.warned_at < ` + cut + ` AND a.last_seen_at < a.warned_at AND ` + noMailInFlight
}

// noMailInFlight: no email of the account is pending (new or waiting for a
// retry) or being sent. Spelled with OR, not IN, so the planner can read the
// (few) rows in flight from the partial indexes outbox_pending_idx and
// outbox_sending_idx; with IN it may scan the whole outbox once per batch.
const noMailInFlight = `NOT EXISTS (
		SELECT 1 FROM outbox o WHERE o.account_id = a.id AND (o.status = 'pending' OR o.status = 'sending'))`

// Candidates implements purge.Session.
func (s *purgeSession) Candidates(ctx context.Context, cut purge.Cutoffs) (purge.Candidates, error) {
	var c purge.Candidates
	err := s.step(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			SELECT (SELECT count(*) FROM accounts a WHERE `+unconfirmedWhere("$1")+`),
			       (SELECT count(*) FROM accounts a WHERE `+dormantWhere("$2")+`),
			       (SELECT count(*) FROM accounts a WHERE `+warnWhere("$3")+`),
			       (SELECT count(*) FROM accounts)`,
			cut.Unconfirmed, cut.Dormant, cut.Warn).Scan(&c.Unconfirmed, &c.Dormant, &c.Warn, &c.Total)
		if err != nil {
			return fmt.Errorf("count purge candidates: %w", interpret(err))
		}
		return nil
	})
	return c, err
}

// purgeArm is one keyset-paginated statement of a category.
//
// The statement picks the next batch in the order of an index, from the
// cursor on (`k >= $2 AND (k, id) > ($2, $3)`, so the index range starts at
// the cursor and ties are broken by the row's key), locks it skipping rows a
// request holds, treats it, and returns one row: how many rows it picked, how
// many it treated, and the sort key of the last one (k, then id or hash). It
// returns no row when nothing is left.
type purgeArm struct {
	sql  string
	args func(cut purge.Cutoffs, from purge.Cursor, limit int) []any
}

// keyArgs are the usual arguments: cut-off, cursor time, cursor id, limit.
func keyArgs(cutoff func(purge.Cutoffs) time.Time) func(purge.Cutoffs, purge.Cursor, int) []any {
	return func(cut purge.Cutoffs, from purge.Cursor, limit int) []any {
		return []any{cutoff(cut), from.At, from.ID, limit}
	}
}

// hashArgs are keyArgs for tables keyed by a hash.
func hashArgs(cutoff func(purge.Cutoffs) time.Time) func(purge.Cutoffs, purge.Cursor, int) []any {
	return func(cut purge.Cutoffs, from purge.Cursor, limit int) []any {
		key := from.Key
		if key == nil {
			key = []byte{} // sorts before every hash; NULL would match nothing
		}
		return []any{cutoff(cut), from.At, key, limit}
	}
}

// deleteBatch is an arm that deletes the rows picked by `batch`, a query
// selecting the sort key k and the primary key keyCol (id or hash) of table,
// in the order of last (reversed). The rows are deleted by primary key from
// an array: a join with the CTE could be planned as a hash join over the
// whole table, once per batch.
func deleteBatch(batch, table, keyCol, last string) string {
	return `
		WITH batch AS (` + batch + `
			FOR UPDATE SKIP LOCKED
		), gone AS (
			DELETE FROM ` + table + ` WHERE ` + keyCol + ` = ANY (ARRAY(SELECT ` + keyCol + ` FROM batch)) RETURNING 1
		)
		SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM gone), k, ` + lastKey(keyCol) + `
		FROM batch ORDER BY ` + last + ` LIMIT 1`
}

// lastKey selects the id and the hash of the last row, one of them NULL.
func lastKey(keyCol string) string {
	if keyCol == "hash" {
		return `NULL::bigint, hash`
	}
	return keyCol + `, NULL::bytea`
}

// purgeArms are the statements of each category, run in order. Each walks
// the partial or plain index named in its comment (see TestPurgePlansUseIndexes).
var purgeArms = map[purge.Category][]purgeArm{
	purge.Unconfirmed: {{
		// accounts_unconfirmed_idx
		sql: deleteBatch(`
			SELECT a.id, a.created_at AS k FROM accounts a
			WHERE `+unconfirmedWhere("$1")+`
			  AND a.created_at >= $2 AND (a.created_at, a.id) > ($2, $3)
			ORDER BY a.created_at, a.id
			LIMIT $4`, "accounts", "id", "k DESC, id DESC"),
		args: keyArgs(func(c purge.Cutoffs) time.Time { return c.Unconfirmed }),
	}},
	purge.Dormant: {{
		// accounts_warned_idx
		sql: deleteBatch(`
			SELECT a.id, a.warned_at AS k FROM accounts a
			WHERE `+dormantWhere("$1")+`
			  AND a.warned_at >= $2 AND (a.warned_at, a.id) > ($2, $3)
			ORDER BY a.warned_at, a.id
			LIMIT $4`, "accounts", "id", "k DESC, id DESC"),
		args: keyArgs(func(c purge.Cutoffs) time.Time { return c.Dormant }),
	}},
	purge.Warned: {{
		// accounts_dormant_idx
		sql: `
			WITH batch AS (
				SELECT a.id, a.last_seen_at AS k FROM accounts a
				WHERE ` + warnWhere("$1") + `
				  AND a.last_seen_at >= $2 AND (a.last_seen_at, a.id) > ($2, $3)
				ORDER BY a.last_seen_at, a.id
				LIMIT $4
				FOR UPDATE SKIP LOCKED
			), warned AS (
				UPDATE accounts SET warned_at = $5 WHERE id = ANY (ARRAY(SELECT id FROM batch)) RETURNING id
			), queued AS (
				INSERT INTO outbox (account_id, kind, created_at, next_attempt_at)
				SELECT id, 'inactive_warning', $5, $5 FROM warned
				RETURNING 1
			)
			SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM queued), k, id, NULL::bytea
			FROM batch ORDER BY k DESC, id DESC LIMIT 1`,
		args: func(cut purge.Cutoffs, from purge.Cursor, limit int) []any {
			return []any{cut.Warn, from.At, from.ID, limit, cut.Now}
		},
	}},
	purge.Sessions: {{
		// sessions_expires_idx; expires_at is never after absolute_expires_at
		sql: deleteBatch(`
			SELECT s.hash, s.expires_at AS k FROM sessions s
			WHERE s.expires_at <= $1
			  AND s.expires_at >= $2 AND (s.expires_at, s.hash) > ($2, $3)
			ORDER BY s.expires_at, s.hash
			LIMIT $4`, "sessions", "hash", "k DESC, hash DESC"),
		args: hashArgs(func(c purge.Cutoffs) time.Time { return c.Now }),
	}},
	purge.Tokens: {{
		// tokens_expires_idx: expired long enough ago
		sql: deleteBatch(`
			SELECT t.hash, t.expires_at AS k FROM tokens t
			WHERE t.expires_at <= $1
			  AND t.expires_at >= $2 AND (t.expires_at, t.hash) > ($2, $3)
			ORDER BY t.expires_at, t.hash
			LIMIT $4`, "tokens", "hash", "k DESC, hash DESC"),
		args: hashArgs(func(c purge.Cutoffs) time.Time { return c.Tokens }),
	}, {
		// tokens_expires_idx: the few not expired yet, for those used long
		// enough ago (with a 24h lifetime, a token used a day ago has
		// expired anyway; a longer lifetime would leave some here)
		sql: deleteBatch(`
			SELECT t.hash, t.expires_at AS k FROM tokens t
			WHERE t.used_at <= $1 AND t.expires_at > $1
			  AND t.expires_at >= $2 AND (t.expires_at, t.hash) > ($2, $3)
			ORDER BY t.expires_at, t.hash
			LIMIT $4`, "tokens", "hash", "k DESC, hash DESC"),
		args: hashArgs(func(c purge.Cutoffs) time.Time { return c.Tokens }),
	}},
	purge.Outbox: {{
		// outbox_sent_idx
		sql: deleteBatch(`
			SELECT o.id, o.sent_at AS k FROM outbox o
			WHERE o.status = 'sent' AND o.sent_at < $1
			  AND o.sent_at >= $2 AND (o.sent_at, o.id) > ($2, $3)
			ORDER BY o.sent_at, o.id
			LIMIT $4`, "outbox", "id", "k DESC, id DESC"),
		args: keyArgs(func(c purge.Cutoffs) time.Time { return c.Outbox }),
	}, {
		// outbox_failed_idx, by id: failures are few
		sql: deleteBatch(`
			SELECT o.id, o.created_at AS k FROM outbox o
			WHERE o.status = 'failed' AND o.created_at < $1 AND o.id > $2
			ORDER BY o.id
			LIMIT $3`, "outbox", "id", "id DESC"),
		args: func(cut purge.Cutoffs, from purge.Cursor, limit int) []any {
			return []any{cut.Outbox, from.ID, limit}
		},
	}, {
		// mail_quota_day_idx: the mail limits of addresses nobody asked to
		// mail for a day (a request after a day's window has passed starts a
		// new one, so a window that started two days ago has seen no request
		// for one); the mail bookkeeping goes with the outbox's. Keyed by
		// address, compared as bytes so the order is the cursor's.
		sql: `
			WITH batch AS (
				SELECT q.address, convert_to(q.address, 'UTF8') AS key, q.day_start AS k FROM mail_quota q
				WHERE q.day_start < $1
				  AND q.day_start >= $2 AND (q.day_start, convert_to(q.address, 'UTF8')) > ($2, $3)
				ORDER BY q.day_start, convert_to(q.address, 'UTF8')
				LIMIT $4
				FOR UPDATE SKIP LOCKED
			), gone AS (
				DELETE FROM mail_quota WHERE address = ANY (ARRAY(SELECT address FROM batch)) RETURNING 1
			)
			SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM gone), k, NULL::bigint, key
			FROM batch ORDER BY k DESC, key DESC LIMIT 1`,
		args: hashArgs(func(c purge.Cutoffs) time.Time { return c.Now.Add(-mailQuotaWindow) }),
	}},
}

// mailQuotaWindow is how long ago a mail_quota row's day window must have
// started for the row to limit nothing any more: two days (the window is
// one; the cooldown, well under a day, ends within the next).
const mailQuotaWindow = 48 * time.Hour

// Others implements purge.Session from pg_stat_activity: the other
// client backends of this database whose last statement started after
// since. A role sees the query_start of its own sessions only (without
// pg_read_all_stats), which are the application's.
func (s *purgeSession) Others(ctx context.Context, since time.Time) (int, time.Time, error) {
	if s.conn == nil {
		return 0, time.Time{}, errors.New("purge session released")
	}
	var (
		n   int
		now time.Time
	)
	err := s.conn.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE query_start > $1), clock_timestamp()
		FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
		since).Scan(&n, &now)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("others' activity: %w", interpret(err))
	}
	return n, now, nil
}

// Batch implements purge.Session.
func (s *purgeSession) Batch(ctx context.Context, c purge.Category, cut purge.Cutoffs, from purge.Cursor, limit int) (purge.Batch, error) {
	arms, ok := purgeArms[c]
	if !ok {
		return purge.Batch{}, fmt.Errorf("purge: unknown category %q", c)
	}
	if from.Arm >= len(arms) {
		return purge.Batch{Next: from, Done: true}, nil
	}
	arm := arms[from.Arm]
	var (
		picked, n int64
		next      = purge.Cursor{Arm: from.Arm}
		id        *int64
	)
	err := s.step(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, arm.sql, arm.args(cut, from, limit)...).Scan(&picked, &n, &next.At, &id, &next.Key)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // nothing left
		}
		if err != nil {
			return fmt.Errorf("batch: %w", interpret(err))
		}
		return nil
	})
	if err != nil {
		return purge.Batch{}, err
	}
	if id != nil {
		next.ID = *id
	}
	if picked < int64(limit) {
		// The arm is exhausted: the next batch starts the next arm.
		next = purge.Cursor{Arm: from.Arm + 1}
	}
	return purge.Batch{N: n, Next: next, Done: next.Arm >= len(arms)}, nil
}

// TickDone implements purge.Store.
func (p *Purges) TickDone(ctx context.Context, tick time.Time) (bool, error) {
	var done bool
	err := p.db.pool.QueryRow(ctx, `
		SELECT EXISTS (
			SELECT 1 FROM purge_runs
			WHERE scheduled >= $1 AND NOT dry_run AND finished_at IS NOT NULL AND error IS NULL)`,
		tick).Scan(&done)
	if err != nil {
		return false, fmt.Errorf("check purge tick: %w", interpret(err))
	}
	return done, nil
}

// StartRun implements purge.Store.
func (p *Purges) StartRun(ctx context.Context, r purge.Report) (int64, error) {
	var id int64
	err := p.db.pool.QueryRow(ctx, `
		INSERT INTO purge_runs (instance, scheduled, started_at, dry_run, forced)
		VALUES ($1, $2, $3, $4, $5)
		RETURNING id`,
		r.Instance, nullTime(r.Scheduled), r.StartedAt, r.DryRun, r.Forced).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record purge run: %w", interpret(err))
	}
	return id, nil
}

// FinishRun implements purge.Store.
func (p *Purges) FinishRun(ctx context.Context, r purge.Report) error {
	var runErr *string
	if r.Error != "" {
		runErr = &r.Error
	}
	tag, err := p.db.pool.Exec(ctx, `
		UPDATE purge_runs SET finished_at = $2, counts = $3, error = $4 WHERE id = $1`,
		r.ID, nullTime(r.FinishedAt), r.Counts, runErr)
	if err != nil {
		return fmt.Errorf("record end of purge run: %w", interpret(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record end of purge run %d: %w", r.ID, ErrNotFound)
	}
	return nil
}

// purgeRun is a purge_runs row.
type purgeRun struct {
	ID         int64        `db:"id"`
	Instance   string       `db:"instance"`
	Scheduled  *time.Time   `db:"scheduled"`
	StartedAt  time.Time    `db:"started_at"`
	FinishedAt *time.Time   `db:"finished_at"`
	DryRun     bool         `db:"dry_run"`
	Forced     bool         `db:"forced"`
	Counts     purge.Counts `db:"counts"`
	Error      *string      `db:"error"`
}

// LastRuns implements purge.Store.
func (p *Purges) LastRuns(ctx context.Context, n int) ([]purge.Report, error) {
	rows, err := p.db.pool.Query(ctx, `
		SELECT id, instance, scheduled, started_at, finished_at, dry_run, forced, counts, error
		FROM purge_runs ORDER BY started_at DESC, id DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("list purge runs: %w", interpret(err))
	}
	runs, err := pgx.CollectRows(rows, pgx.RowToStructByName[purgeRun])
	if err != nil {
		return nil, fmt.Errorf("list purge runs: %w", interpret(err))
	}
	reports := make([]purge.Report, len(runs))
	for i, r := range runs {
		reports[i] = purge.Report{
			ID: r.ID, Instance: r.Instance, StartedAt: r.StartedAt,
			DryRun: r.DryRun, Forced: r.Forced, Counts: r.Counts,
		}
		if r.Scheduled != nil {
			reports[i].Scheduled = *r.Scheduled
		}
		if r.FinishedAt != nil {
			reports[i].FinishedAt = *r.FinishedAt
		}
		if r.Error != nil {
			reports[i].Error = *r.Error
		}
	}
	return reports, nil
}

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Plans returns PostgreSQL's plan (EXPLAIN, not run) of each statement of
// category c from the start, for checking that batches walk their indexes.
func (p *Purges) Plans(ctx context.Context, c purge.Category, cut purge.Cutoffs, limit int) ([]string, error) {
	var plans []string
	for i, arm := range purgeArms[c] {
		rows, err := p.db.pool.Query(ctx, "EXPLAIN "+arm.sql, arm.args(cut, purge.Cursor{Arm: i}, limit)...)
		if err != nil {
			return nil, fmt.Errorf("explain %s: %w", c, interpret(err))
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("explain %s: %w", c, interpret(err))
		}
		plans = append(plans, strings.Join(lines, "\n"))
	}
	return plans, nil
}

// purgeCounts are the dry run's statements: plain SELECTs with the
// predicates of the batches, taking no row lock. Their parameters are every
// cut-off (see countArgs). Rows of the accounts the run would delete are
// left out of the other categories, as the real run deletes them by
// cascade before it comes to them.
var purgeCounts = map[purge.Category]string{
	purge.Unconfirmed: `SELECT count(*) FROM accounts a WHERE ` + unconfirmedWhere("$2"),
	purge.Dormant:     `SELECT count(*) FROM accounts a WHERE ` + dormantWhere("$4"),
	purge.Warned:      `SELECT count(*) FROM accounts a WHERE ` + warnWhere("$3"),
	purge.Sessions: `SELECT count(*) FROM sessions s WHERE s.expires_at <= $1
		AND s.account_id NOT IN (` + goingAccounts + `)`,
	purge.Tokens: `SELECT count(*) FROM tokens t WHERE (t.expires_at <= $5 OR (t.used_at <= $5 AND t.expires_at > $5))
		AND t.account_id NOT IN (` + goingAccounts + `)`,
	purge.Outbox: `SELECT count(*) FROM outbox o WHERE ((o.status = 'sent' AND o.sent_at < $6) OR (o.status = 'failed' AND o.created_at < $6))
		AND o.account_id NOT IN (` + goingAccounts + `)`,
}

// goingAccounts are the accounts a run deletes, for purgeCounts.
var goingAccounts = `SELECT a.id FROM accounts a WHERE (` + unconfirmedWhere("$2") + `) OR (` + dormantWhere("$4") + `)`

// countArgs are purgeCounts' parameters.
func countArgs(cut purge.Cutoffs) []any {
	return []any{cut.Now, cut.Unconfirmed, cut.Warn, cut.Dormant, cut.Tokens, cut.Outbox}
}

// Count implements purge.Session: one SELECT, outside any transaction of
// the session, so it locks no row.
func (s *purgeSession) Count(ctx context.Context, c purge.Category, cut purge.Cutoffs) (int64, error) {
	q, ok := purgeCounts[c]
	if !ok {
		return 0, fmt.Errorf("purge: unknown category %q", c)
	}
	if s.conn == nil {
		return 0, errors.New("purge session released")
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	// Every statement gets every cut-off; the unused CTE gives each its type.
	q = `WITH cut AS (SELECT $1::timestamptz, $2::timestamptz, $3::timestamptz, $4::timestamptz, $5::timestamptz, $6::timestamptz) ` + q
	var n int64
	if err := s.conn.QueryRow(ctx, q, countArgs(cut)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", c, interpret(err))
	}
	return n, nil
}
