package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/account"
)

// Outbox is the durable side of the email queue. The sender's sweep leases
// due rows and the workers claim the rows the in-memory queue brought them;
// either way a row is written once to take it (status 'sending', a lease,
// an attempt counted) and once to settle it: sent (group-committed for
// many rows at once), to retry, failed, suppressed, or given back.
//
// A row being worked on has status 'sending', a lease (lease_until) and an
// owner (leased_by, the sender's instance id). Every settling write is
// conditional on that lease still being the caller's, so a worker that
// stalled past its lease cannot clobber a row another instance re-leased.
//
// A lease is dead, and its row free for another instance to take, when
// lease_until has passed or when its owner is not alive: no session holds
// the owner's instance lock (see LockInstance). The second is what makes a
// crash cheap: PostgreSQL drops the lock with the dead process's session,
// and its rows are taken by the next sweep instead of a minute later. The
// first is the backstop for an owner that is alive but stuck.
type Outbox struct{ db *DB }

// Outbox returns the outbox repository over db.
func (db *DB) Outbox() *Outbox { return &Outbox{db: db} }

// OutboxMail is an outbox row taken for sending, with what it takes to
// address and write the email.
type OutboxMail struct {
	ID   int64
	Kind account.MailKind
	// AccountID is the account it is about; 0 for the goodbye of a
	// deleted account.
	AccountID int64
	// Email is the recipient: the row's own recipient if it has one (a new
	// address to confirm, a deleted account's), else the account's address.
	Email string
	// PasswordHash is the password hash of the signup that queued a
	// confirmation; empty otherwise.
	PasswordHash string
	// Attempts counts this one: 1 on the first try.
	Attempts  int
	CreatedAt time.Time
	// WarnedAt is when the account's dormancy warning was queued; zero if
	// none is (any more).
	WarnedAt time.Time
	// LastError is the outcome of the last attempt that failed, if any.
	LastError string
	// Suppressed is true when the recipient is on the suppression list:
	// nothing is to be sent to it.
	Suppressed bool
}

// takeReturning is the RETURNING list of a statement that takes rows; o
// is the outbox row.
const takeReturning = `o.id, o.kind, o.account_id, o.recipient, o.password_hash, o.attempts, o.created_at, o.last_error`

// takenColumns is the select list, read by scanTaken, over t, the rows a
// statement took (takeReturning), LEFT JOINed to a, their accounts: a row
// may have no account (a deleted account's goodbye), and its own
// recipient comes before its account's address.
const takenColumns = `t.id, t.kind, coalesce(t.account_id, 0), coalesce(t.recipient, a.email, ''),
	coalesce(t.password_hash, ''), t.attempts, t.created_at, a.warned_at, coalesce(t.last_error, ''),
	EXISTS (SELECT 1 FROM mail_suppressions s WHERE s.address = lower(coalesce(t.recipient, a.email)))`

// unsendable is true for an outbox row o that has no account and is of a
// kind that needs one ($5, the kinds sent without one, is the other
// side): a visitor asked for mail to an address without an account, or
// beyond its limits, and the request queued the row only so as to do the
// same work as one that sends. Lease and ClaimBatch delete such rows
// unsent where they would take them.
const unsendable = `(o.account_id IS NULL AND NOT o.kind = ANY ($5))`

// kindsWithoutAccount are the kinds of email sent with no account.
var kindsWithoutAccount = func() []string {
	var ks []string
	for _, k := range account.KindsWithoutAccount() {
		ks = append(ks, string(k))
	}
	return ks
}()

func scanTaken(row pgx.CollectableRow) (OutboxMail, error) {
	var (
		m      OutboxMail
		kind   string
		warned *time.Time
	)
	err := row.Scan(&m.ID, &kind, &m.AccountID, &m.Email, &m.PasswordHash, &m.Attempts, &m.CreatedAt, &warned, &m.LastError, &m.Suppressed)
	m.Kind = account.MailKind(kind)
	if warned != nil {
		m.WarnedAt = *warned
	}
	return m, err
}

// Lease takes up to limit due rows for instance until leaseUntil, counts an
// attempt on each (the lease is the claim: the sender sends what it
// returns without claiming it again) and returns them, oldest work first, to be fed to the
// sender's queue. Due rows are pending ones whose next attempt is at or
// before now, and rows whose lease is dead: it expired before now (its
// holder stalled), or, when checkHolders is true, its holder's instance
// lock is not held (the holder died; this reads pg_locks, so the sender
// asks for it on its periodic sweeps, not on every one). Rows locked by a
// concurrent Lease are skipped, so instances never take the same row. Due
// rows that are unsendable are deleted instead of taken.
func (o *Outbox) Lease(ctx context.Context, instance string, now, leaseUntil time.Time, limit int, checkHolders bool) ([]OutboxMail, error) {
	if limit <= 0 {
		return nil, nil
	}
	dead := `lease_until < $1`
	if checkHolders {
		dead = `(lease_until < $1 OR ` + holderDead + `)`
	}
	// Two arms, each served by its partial index; FOR UPDATE is not allowed
	// with UNION, hence the CTEs. The dead arm reads every 'sending' row,
	// which is only the work in flight.
	rows, err := o.db.pool.Query(ctx, `
		WITH dead AS (
			SELECT id, lease_until AS due_at FROM outbox o
			WHERE status = 'sending' AND `+dead+`
			ORDER BY lease_until
			LIMIT $4
			FOR UPDATE SKIP LOCKED
		), due AS (
			SELECT id, next_attempt_at AS due_at FROM outbox
			WHERE status = 'pending' AND next_attempt_at <= $1
			ORDER BY next_attempt_at
			LIMIT $4
			FOR UPDATE SKIP LOCKED
		), picked AS (
			(SELECT 0 AS arm, * FROM dead UNION ALL SELECT 1, * FROM due)
			ORDER BY arm, due_at
			LIMIT $4
		), dropped AS (
			DELETE FROM outbox o USING picked WHERE o.id = picked.id AND `+unsendable+`
		), taken AS (
			UPDATE outbox o SET status = 'sending', attempts = o.attempts + 1, lease_until = $2, leased_by = $3
			FROM picked WHERE o.id = picked.id AND NOT `+unsendable+`
			RETURNING picked.arm, picked.due_at, `+takeReturning+`
		)
		SELECT `+takenColumns+`
		FROM taken t LEFT JOIN accounts a ON a.id = t.account_id
		ORDER BY t.arm, t.due_at, t.id`, now, leaseUntil, instance, limit, kindsWithoutAccount)
	if err != nil {
		return nil, fmt.Errorf("lease outbox rows: %w", interpret(err))
	}
	ms, err := pgx.CollectRows(rows, scanTaken)
	if err != nil {
		return nil, fmt.Errorf("lease outbox rows: %w", interpret(err))
	}
	return ms, nil
}

// ClaimBatch takes those of rows ids that are free for instance until
// leaseUntil, counts an attempt on each and returns them in order of id. A
// row is free when it is pending and due, or its lease is dead (expired,
// or its holder's instance lock is not held); with own, also when instance
// holds it already (a Lease taken before the instance lock was lost and
// found again). The caller must not claim a row it is already sending.
// Free rows that are unsendable are deleted instead of claimed.
func (o *Outbox) ClaimBatch(ctx context.Context, ids []int64, instance string, now, leaseUntil time.Time, own bool) ([]OutboxMail, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// holderDead is only evaluated for rows another instance leased, which
	// the in-memory queue rarely brings.
	free := `o.id = ANY ($1)
		AND (   (o.status = 'pending' AND o.next_attempt_at <= $3)
		     OR (o.status = 'sending' AND (($6 AND o.leased_by = $2) OR o.lease_until < $3 OR ` + holderDead + `)))`
	rows, err := o.db.pool.Query(ctx, `
		WITH dropped AS (
			DELETE FROM outbox o WHERE `+free+` AND `+unsendable+`
		), claimed AS (
			UPDATE outbox o SET
				status = 'sending', attempts = o.attempts + 1, lease_until = $4, leased_by = $2
			WHERE `+free+` AND NOT `+unsendable+`
			RETURNING `+takeReturning+`
		)
		SELECT `+takenColumns+`
		FROM claimed t LEFT JOIN accounts a ON a.id = t.account_id
		ORDER BY t.id`,
		ids, instance, now, leaseUntil, kindsWithoutAccount, own)
	if err != nil {
		return nil, fmt.Errorf("claim outbox rows: %w", interpret(err))
	}
	ms, err := pgx.CollectRows(rows, scanTaken)
	if err != nil {
		return nil, fmt.Errorf("claim outbox rows: %w", interpret(err))
	}
	return ms, nil
}

// ExtendLease moves the lease of every row instance holds to leaseUntil and
// returns how many it moved: ids, or all of them when ids is nil. A sender
// calls it for a batch that runs long, and for everything it holds while
// it waits for a blocked server.
func (o *Outbox) ExtendLease(ctx context.Context, ids []int64, instance string, leaseUntil time.Time) (int64, error) {
	tag, err := o.db.pool.Exec(ctx, `
		UPDATE outbox SET lease_until = $3
		WHERE status = 'sending' AND leased_by = $2 AND ($1::bigint[] IS NULL OR id = ANY ($1))`, ids, instance, leaseUntil)
	if err != nil {
		return 0, fmt.Errorf("extend outbox leases: %w", interpret(err))
	}
	return tag.RowsAffected(), nil
}

// MarkSent settles rows ids as sent at now, in one round trip. It returns
// the ids it settled, in order: those whose lease instance still held.
func (o *Outbox) MarkSent(ctx context.Context, ids []int64, instance string, now time.Time) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// A commit that does not wait for its WAL flush: only a crash of the
	// database server itself can lose the mark, and then the rows are sent
	// again, as at-least-once delivery allows. The sender waits for the
	// mark before it ends its next message; waiting for the disk here
	// would only slow every worker down. set_config(…, true) is SET LOCAL
	// inside the statement's own transaction: one statement, one round
	// trip, a prepared plan.
	rows, err := o.db.pool.Query(ctx, `
		UPDATE outbox SET status = 'sent', sent_at = $3, lease_until = NULL, last_error = NULL
		FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async
		WHERE id = ANY ($1) AND status = 'sending' AND leased_by = $2
		RETURNING id`, ids, instance, now)
	if err != nil {
		return nil, fmt.Errorf("mark outbox rows sent: %w", interpret(err))
	}
	settled, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("mark outbox rows sent: %w", interpret(err))
	}
	slices.Sort(settled)
	return settled, nil
}

// Retry puts row id back to pending, due at next, keeping lastErr. ok is
// false when instance no longer holds the row's lease.
func (o *Outbox) Retry(ctx context.Context, id int64, instance string, next time.Time, lastErr string) (bool, error) {
	tag, err := o.db.pool.Exec(ctx, `
		UPDATE outbox SET status = 'pending', next_attempt_at = $3, last_error = $4,
			lease_until = NULL, leased_by = NULL
		WHERE id = $1 AND status = 'sending' AND leased_by = $2`, id, instance, next, lastErr)
	if err != nil {
		return false, fmt.Errorf("schedule retry of outbox row %d: %w", id, interpret(err))
	}
	return tag.RowsAffected() == 1, nil
}

// Requeue gives back rows ids that instance took but could not attempt,
// because the server, not the message, failed (the sender is blocked): they
// are pending and due at now again, the attempt their taking counted is
// taken back, and lastErr is kept when not empty. It returns how many rows
// it gave back.
func (o *Outbox) Requeue(ctx context.Context, ids []int64, instance string, now time.Time, lastErr string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	tag, err := o.db.pool.Exec(ctx, `
		UPDATE outbox SET status = 'pending', next_attempt_at = $3, attempts = greatest(attempts - 1, 0),
			last_error = coalesce(nullif($4, ''), last_error), lease_until = NULL, leased_by = NULL
		WHERE id = ANY ($1) AND status = 'sending' AND leased_by = $2`, ids, instance, now, lastErr)
	if err != nil {
		return 0, fmt.Errorf("requeue outbox rows: %w", interpret(err))
	}
	return tag.RowsAffected(), nil
}

// MarkFailed settles row id as failed for good, keeping lastErr. ok is false
// when instance no longer holds the row's lease.
func (o *Outbox) MarkFailed(ctx context.Context, id int64, instance string, lastErr string) (bool, error) {
	tag, err := o.db.pool.Exec(ctx, `
		UPDATE outbox SET status = 'failed', last_error = $3, lease_until = NULL
		WHERE id = $1 AND status = 'sending' AND leased_by = $2`, id, instance, lastErr)
	if err != nil {
		return false, fmt.Errorf("mark outbox row %d failed: %w", id, interpret(err))
	}
	return tag.RowsAffected() == 1, nil
}

// Release gives back rows instance holds, making them pending and due at
// now, with the attempt their taking counted taken back: ids, or every row
// it holds when ids is nil. A stopping sender calls it for the work it
// could not finish. It returns how many rows it released.
func (o *Outbox) Release(ctx context.Context, instance string, ids []int64, now time.Time) (int64, error) {
	tag, err := o.db.pool.Exec(ctx, `
		UPDATE outbox SET status = 'pending', next_attempt_at = $3, attempts = greatest(attempts - 1, 0),
			lease_until = NULL, leased_by = NULL
		WHERE status = 'sending' AND leased_by = $1 AND ($2::bigint[] IS NULL OR id = ANY ($2))`,
		instance, ids, now)
	if err != nil {
		return 0, fmt.Errorf("release outbox rows: %w", interpret(err))
	}
	return tag.RowsAffected(), nil
}

// OutboxCounts is how many outbox rows are in each status.
type OutboxCounts struct {
	Pending, Sending, Sent, Failed, Suppressed int64
}

// Counts returns the number of outbox rows per status, for the status page.
func (o *Outbox) Counts(ctx context.Context) (OutboxCounts, error) {
	var c OutboxCounts
	err := o.db.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE status = 'pending'),
		       count(*) FILTER (WHERE status = 'sending'),
		       count(*) FILTER (WHERE status = 'sent'),
		       count(*) FILTER (WHERE status = 'failed'),
		       count(*) FILTER (WHERE status = 'suppressed')
		FROM outbox`).Scan(&c.Pending, &c.Sending, &c.Sent, &c.Failed, &c.Suppressed)
	if err != nil {
		return c, fmt.Errorf("count outbox rows: %w", interpret(err))
	}
	return c, nil
}

// instanceLockClass is the first key of every sender's instance lock,
// pg_advisory_lock_shared(instanceLockClass, hashtext(instance)): "mail" in
// ASCII, 0x6d61696c. Two-key advisory locks (objsubid 2 in pg_locks) never
// meet the one-key locks of the migrator and the purger.
const instanceLockClass = "1835100524"

// holderDead is true for an outbox row o whose leased_by holds no instance
// lock in this database (advisory locks are per database). The subquery is
// uncorrelated, so PostgreSQL reads pg_locks once per statement, and only
// when a row needs it, and hashes what it found.
const holderDead = `hashtext(o.leased_by)::oid NOT IN (
	SELECT l.objid FROM pg_locks l
	WHERE l.locktype = 'advisory' AND l.classid = ` + instanceLockClass + ` AND l.objsubid = 2 AND l.granted
	  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`

// InstanceLock is a sender instance's sign of life: a session-level
// advisory lock on a connection of its own, held for as long as the
// instance runs. When the process dies, PostgreSQL ends its session and
// the lock goes with it, so the rows it leased are dead at once (see Lease
// and Claim). A process that vanishes with its host keeps its lock until
// the server notices the connection is gone (TCP keepalive); its rows are
// then taken when lease_until passes, as before.
//
// The lock is shared: taking it never waits, and two instances whose ids
// hash alike both hold it. Such a collision only means that the rows of
// one of them wait for lease_until after a crash while the other lives.
// The session must be a real one: behind a pooler in transaction mode the
// lock would not last.
//
// An InstanceLock is used by one goroutine at a time: Wait, then Release.
type InstanceLock struct {
	conn     *pgx.Conn
	instance string
	others   int
	lost     bool // Wait saw the session go
}

// LockInstance opens a connection with the pool's settings (outside the
// pool, so it takes none of its room and never goes back to it holding the
// lock), named "signup-mail <instance>" in pg_stat_activity, and takes
// instance's lock on it.
func (o *Outbox) LockInstance(ctx context.Context, instance string) (*InstanceLock, error) {
	cfg := o.db.pool.Config().ConnConfig // a copy
	cfg.RuntimeParams["application_name"] = "signup-mail " + instance
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("take instance lock: connect: %w", interpret(err))
	}
	l := &InstanceLock{conn: conn, instance: instance}
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock_shared(`+instanceLockClass+`, hashtext($1))`, instance)
	if err == nil {
		err = conn.QueryRow(ctx, `
			SELECT count(*) FROM pg_locks l
			WHERE l.locktype = 'advisory' AND l.classid = `+instanceLockClass+` AND l.objsubid = 2 AND l.granted
			  AND l.objid = hashtext($1)::oid AND l.pid <> pg_backend_pid()
			  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
			instance).Scan(&l.others)
	}
	if err != nil {
		conn.Close(context.Background()) //nolint:errcheck // ending the session frees the lock
		return nil, fmt.Errorf("take instance lock: %w", interpret(err))
	}
	return l, nil
}

// PID is the server process holding the lock, as pg_locks and
// pg_stat_activity show it.
func (l *InstanceLock) PID() uint32 { return l.conn.PgConn().PID() }

// Others is how many other sessions held the same lock when it was taken:
// another live process with the same instance id, or one whose id hashes
// alike. Either way a crash of one is noticed only when its leases expire;
// with the same id, the two also share their leases.
func (l *InstanceLock) Others() int { return l.others }

// Wait blocks while the lock is held. It returns ctx.Err() when ctx ends,
// and an error saying why once the session is lost: the server ended it
// (a restart, pg_terminate_backend: noticed at once), or the connection
// broke (noticed at once, or by a ping after checkEvery of silence when it
// broke without a word). A lost lock is gone for good; Release the
// InstanceLock and take a new one.
func (l *InstanceLock) Wait(ctx context.Context, checkEvery time.Duration) error {
	for {
		// Nothing is LISTENed for: this only reads until the server says
		// goodbye or the connection fails, which takes no time to notice.
		quiet, cancel := context.WithTimeout(ctx, checkEvery)
		err := l.conn.PgConn().WaitForNotification(quiet)
		silent := quiet.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !silent {
			l.lost = true
			return fmt.Errorf("instance lock lost: %w", interpret(err))
		}
		// Silent for a while: ask, in case the connection died quietly.
		ping, cancel := context.WithTimeout(ctx, checkEvery)
		err = l.conn.Ping(ping)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			l.lost = true
			return fmt.Errorf("instance lock lost: %w", interpret(err))
		}
	}
}

// Release gives the lock up and closes its connection. Closing alone would
// free it too; unlocking first does not depend on how soon the server
// notices. A lost lock is only closed.
func (l *InstanceLock) Release(ctx context.Context) error {
	if l.conn.IsClosed() {
		return nil
	}
	if l.lost {
		l.conn.Close(ctx) //nolint:errcheck // it is broken already
		return nil
	}
	_, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock_shared(`+instanceLockClass+`, hashtext($1))`, l.instance)
	if cerr := l.conn.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("release instance lock: %w", interpret(err))
	}
	return nil
}
