package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/account"
)

// Accounts implements account.Repository.
type Accounts struct{ db *DB }

// Accounts returns the account repository over db.
func (db *DB) Accounts() *Accounts { return &Accounts{db: db} }

var _ account.Repository = (*Accounts)(nil)

// Signup implements account.Repository.
//
// It takes one statement, and so one round trip, whether the address is
// new or taken: the account, its turn of the address's mail limits and its
// outbox row go in together, or, when the address has an account, the turn
// and the mail to its owner. The cases cost the same, so the answer's
// timing does not tell them apart. The one case the statement cannot
// settle, an address taken by a signup that committed while it ran (its
// snapshot does not see that account), is settled by running it again.
func (r *Accounts) Signup(ctx context.Context, email, passwordHash string, now time.Time, turn, attempt account.MailTurn) (account.SignupResult, error) {
	var (
		res       account.SignupResult
		confirmed bool
		err       error
	)
	for range 2 {
		err = r.db.pool.QueryRow(ctx, signupSQL,
			email, passwordHash, now, turn.Address,
			turn.Kind, micros(turn.Cooldown), attempt.Kind, micros(attempt.Cooldown), turn.DailyCap,
			string(account.MailSignupAttempt), string(account.MailConfirm)).
			Scan(&res.AccountID, &res.Existing, &confirmed, &res.OutboxID, &res.Held)
		if !errors.Is(err, pgx.ErrNoRows) {
			break
		}
	}
	if err != nil {
		return res, fmt.Errorf("sign up: %w", interpret(err))
	}
	res.Kind = account.MailConfirm
	if confirmed {
		res.Kind = account.MailSignupAttempt
	}
	return res, nil
}

// signupSQL is Signup's statement. A confirmed owner is sent a note (limit
// kind $7, cooldown $8); otherwise a confirmation carrying this signup's
// password hash (limit kind $5, cooldown $6). When the limits hold the
// email back, the row is queued all the same, with no account, and the
// sender drops it: a refused request does the work of an allowed one.
var signupSQL = `
	WITH created AS (
		INSERT INTO accounts (email, password_hash, created_at)
		VALUES ($1, $2, $3)
		ON CONFLICT ((lower(email))) DO NOTHING
		RETURNING id
	), owner AS (
		SELECT id, false AS existing, false AS confirmed FROM created
		UNION ALL
		SELECT id, true, confirmed_at IS NOT NULL FROM accounts
		WHERE lower(email) = lower($1) AND NOT EXISTS (SELECT 1 FROM created)
	), turn AS (
		SELECT coalesce((SELECT CASE WHEN confirmed THEN $7::text ELSE $5::text END FROM owner), $5::text) AS kind,
		       coalesce((SELECT CASE WHEN confirmed THEN $8::bigint ELSE $6::bigint END FROM owner), $6::bigint)
		           * interval '1 microsecond' AS cooldown
	), ` + quotaCTE("$4::text", "(SELECT kind FROM turn)", "$3::timestamptz", "(SELECT cooldown FROM turn)", "$9::integer") + `,
	queued AS (
		INSERT INTO outbox (account_id, kind, password_hash, recipient, created_at, next_attempt_at)
		SELECT CASE WHEN quota.allowed THEN o.id END, CASE WHEN o.confirmed THEN $10::text ELSE $11::text END,
		       CASE WHEN quota.allowed AND NOT o.confirmed THEN $2 END,
		       CASE WHEN quota.allowed THEN NULL ELSE $1 END, $3, $3
		FROM owner o, quota
		RETURNING id, account_id IS NULL AS held
	)
	SELECT o.id, o.existing, o.confirmed, q.id, q.held FROM owner o, queued q`

// QueueForAddress implements account.Repository. It does the same work
// whether or not the address has an account, and whether or not its limits
// allow an email: one turn of the limits and one outbox row. With no such
// account, or when the limits hold the email back, the row names only the
// address, and the sender drops it unsent (see Outbox.Lease and
// Outbox.ClaimBatch): the request path cannot tell the cases apart by its
// work.
func (r *Accounts) QueueForAddress(ctx context.Context, kind account.MailKind, email string, onlyUnconfirmed bool, now time.Time, turn account.MailTurn) (int64, bool, error) {
	var (
		id     int64
		target bool
	)
	err := r.db.pool.QueryRow(ctx, `
		WITH `+quotaCTE("$3::text", "$4::text", "$2::timestamptz", "$5::bigint * interval '1 microsecond'", "$6::integer")+`,
		target AS (
			SELECT a.id FROM accounts a, quota
			WHERE lower(a.email) = lower($1) AND (NOT $8::boolean OR a.confirmed_at IS NULL) AND quota.allowed
		), queued AS (
			INSERT INTO outbox (account_id, kind, recipient, created_at, next_attempt_at)
			SELECT (SELECT id FROM target), $7, CASE WHEN EXISTS (SELECT 1 FROM target) THEN NULL ELSE $1 END, $2, $2
			RETURNING id, account_id IS NOT NULL AS target
		)
		SELECT id, target FROM queued`,
		email, now, turn.Address, turn.Kind, micros(turn.Cooldown), turn.DailyCap, string(kind), onlyUnconfirmed).Scan(&id, &target)
	if err != nil {
		return 0, false, fmt.Errorf("queue %s: %w", kind, interpret(err))
	}
	return id, target, nil
}

// queueMail inserts an outbox row due now, to recipient when it is not
// empty (else to the account's address).
func queueMail(ctx context.Context, q querier, accountID int64, kind account.MailKind, recipient string, now time.Time) (int64, error) {
	var (
		id   int64
		acct *int64
		to   *string
	)
	if accountID != 0 {
		acct = &accountID
	}
	if recipient != "" {
		to = &recipient
	}
	err := q.QueryRow(ctx, `
		INSERT INTO outbox (account_id, kind, recipient, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $4)
		RETURNING id`, acct, string(kind), to, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("queue %s mail: %w", kind, interpret(err))
	}
	return id, nil
}

const accountColumns = `a.id, a.email, a.password_hash, a.created_at, a.confirmed_at, a.last_seen_at`

// scanAccount reads accountColumns, then any extra columns into extra.
func scanAccount(row pgx.Row, extra ...any) (account.Account, error) {
	var a account.Account
	var confirmed, seen *time.Time
	dest := append([]any{&a.ID, &a.Email, &a.PasswordHash, &a.CreatedAt, &confirmed, &seen}, extra...)
	if err := row.Scan(dest...); err != nil {
		return a, err
	}
	if confirmed != nil {
		a.ConfirmedAt = *confirmed
	}
	if seen != nil {
		a.LastSeenAt = *seen
	}
	return a, nil
}

// AccountByEmail implements account.Repository.
func (r *Accounts) AccountByEmail(ctx context.Context, email string) (account.Account, error) {
	a, err := scanAccount(r.db.pool.QueryRow(ctx,
		`SELECT `+accountColumns+` FROM accounts a WHERE lower(a.email) = lower($1)`, email))
	if err != nil {
		return a, fmt.Errorf("account by email: %w", accountErr(err))
	}
	return a, nil
}

// CreateTokens implements account.TokenStore: it stores the hashes of
// tokens minted for emails, and kills the older live tokens of the same
// account and purpose where the purpose says a newer one supersedes them.
// When it supersedes, the accounts are locked first (FOR KEY SHARE, which
// the insert's foreign key check takes anyway), then their tokens: the
// order of every writer (a link's use, the purge), so the two never
// deadlock.
func (r *Accounts) CreateTokens(ctx context.Context, tokens []account.IssuedToken) error {
	if len(tokens) == 0 {
		return nil
	}
	n := len(tokens)
	tokens = slices.Clone(tokens)
	slices.SortStableFunc(tokens, func(a, b account.IssuedToken) int { return cmp.Compare(a.AccountID, b.AccountID) })
	var (
		hashes           = make([][]byte, n)
		accounts         = make([]int64, n)
		purposes         = make([]string, n)
		pwHashes         = make([]*string, n)
		emails           = make([]*string, n)
		created, expires = make([]time.Time, n), make([]time.Time, n)
		supersede        = make([]bool, n)
	)
	for i, t := range tokens {
		hashes[i], accounts[i], purposes[i] = t.Hash, t.AccountID, string(t.Purpose)
		created[i], expires[i] = t.CreatedAt, t.ExpiresAt
		supersede[i] = t.Purpose.SupersedesOlder()
		if t.PasswordHash != "" {
			pwHashes[i] = &tokens[i].PasswordHash
		}
		if t.Email != "" {
			emails[i] = &tokens[i].Email
		}
	}
	const insert = `
		INSERT INTO tokens (hash, account_id, purpose, password_hash, email, created_at, expires_at)
		SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::text[], $4::text[], $5::text[],
		                     $6::timestamptz[], $7::timestamptz[])`
	args := []any{hashes, accounts, purposes, pwHashes, emails, created, expires}
	var err error
	if !slices.Contains(supersede, true) {
		// A batch that supersedes nothing (confirmations, the common case)
		// locks no token: the insert alone, one statement and one round
		// trip, its foreign key checks locking the accounts as it goes, in
		// order of id as the rows come (sorted below), as the explicit lock
		// would.
		_, err = r.db.pool.Exec(ctx, insert, args...)
	} else {
		err = r.db.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `
				SELECT id FROM accounts WHERE id = ANY ($1) ORDER BY id FOR KEY SHARE`, accounts); err != nil {
				return fmt.Errorf("lock accounts: %w", interpret(err))
			}
			if _, err := tx.Exec(ctx, `
				UPDATE tokens t SET superseded_at = new.created_at
				FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::boolean[])
					AS new (account_id, purpose, created_at, supersede)
				WHERE new.supersede AND t.account_id = new.account_id AND t.purpose = new.purpose
				  AND t.used_at IS NULL AND t.superseded_at IS NULL`,
				accounts, purposes, created, supersede); err != nil {
				return fmt.Errorf("supersede tokens: %w", interpret(err))
			}
			_, err := tx.Exec(ctx, insert, args...)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("create tokens: %w", accountErr(err))
	}
	return nil
}

var _ account.TokenStore = (*Accounts)(nil)

// AccountByID returns an account by id.
func (r *Accounts) AccountByID(ctx context.Context, id int64) (account.Account, error) {
	a, err := scanAccount(r.db.pool.QueryRow(ctx,
		`SELECT `+accountColumns+` FROM accounts a WHERE a.id = $1`, id))
	if err != nil {
		return a, fmt.Errorf("account by id: %w", accountErr(err))
	}
	return a, nil
}

// accountErr maps a missing row to the domain's ErrNotFound.
func accountErr(err error) error {
	err = interpret(err)
	if errors.Is(err, ErrNotFound) {
		return errors.Join(account.ErrNotFound, err)
	}
	return err
}

// SignedIn implements account.Repository.
func (r *Accounts) SignedIn(ctx context.Context, accountID int64, now time.Time, every time.Duration, rehash string) error {
	return r.db.inTx(ctx, func(tx pgx.Tx) error {
		var warned bool
		err := tx.QueryRow(ctx, `
			UPDATE accounts a SET
				last_seen_at = CASE WHEN a.last_seen_at IS NULL OR a.last_seen_at <= $3 THEN $2 ELSE a.last_seen_at END,
				warned_at = NULL,
				password_hash = CASE WHEN $4 = '' THEN a.password_hash ELSE $4 END
			FROM (SELECT id, warned_at FROM accounts WHERE id = $1 FOR UPDATE) old
			WHERE a.id = old.id
			  AND (a.last_seen_at IS NULL OR a.last_seen_at <= $3 OR a.warned_at IS NOT NULL OR $4 <> '')
			RETURNING old.warned_at IS NOT NULL`,
			accountID, now, now.Add(-every), rehash).Scan(&warned)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // recent enough: no write
		}
		if err != nil {
			return fmt.Errorf("record sign-in: %w", interpret(err))
		}
		if warned {
			// The person is back: a dormancy warning not yet sent is moot.
			_, err = tx.Exec(ctx, `
				DELETE FROM outbox WHERE account_id = $1 AND kind = 'inactive_warning' AND status = 'pending'`,
				accountID)
			if err != nil {
				return fmt.Errorf("cancel dormancy warning: %w", interpret(err))
			}
		}
		return nil
	})
}

// CreateSession implements account.Repository.
func (r *Accounts) CreateSession(ctx context.Context, s account.Session) error {
	_, err := r.db.pool.Exec(ctx, `
		INSERT INTO sessions (hash, account_id, created_at, last_used_at, expires_at, absolute_expires_at, user_agent)
		VALUES ($1, $2, $3, $3, $4, $5, $6)`,
		s.Hash, s.AccountID, s.CreatedAt, s.ExpiresAt, s.AbsoluteExpiresAt, s.UserAgent)
	if err != nil {
		return fmt.Errorf("create session: %w", interpret(err))
	}
	return nil
}

// sessionTouchEvery limits how often a session's idle expiry is moved, so
// browsing is not a write per request.
const sessionTouchEvery = time.Minute

// SessionAccount implements account.Repository.
func (r *Accounts) SessionAccount(ctx context.Context, hash []byte, now time.Time, idle time.Duration) (account.Account, error) {
	var lastUsed time.Time
	a, err := scanAccount(r.db.pool.QueryRow(ctx, `
		SELECT `+accountColumns+`, s.last_used_at
		FROM sessions s JOIN accounts a ON a.id = s.account_id
		WHERE s.hash = $1 AND s.expires_at > $2 AND s.absolute_expires_at > $2`, hash, now), &lastUsed)
	if err != nil {
		return a, fmt.Errorf("session: %w", accountErr(err))
	}
	if now.Sub(lastUsed) >= sessionTouchEvery {
		_, err := r.db.pool.Exec(ctx, `
			UPDATE sessions SET last_used_at = $2, expires_at = LEAST($3, absolute_expires_at)
			WHERE hash = $1`, hash, now, now.Add(idle))
		if err != nil {
			return a, fmt.Errorf("extend session: %w", interpret(err))
		}
	}
	return a, nil
}

// DeleteSession implements account.Repository.
func (r *Accounts) DeleteSession(ctx context.Context, hash []byte) error {
	if _, err := r.db.pool.Exec(ctx, `DELETE FROM sessions WHERE hash = $1`, hash); err != nil {
		return fmt.Errorf("delete session: %w", interpret(err))
	}
	return nil
}

// Sessions implements account.Repository.
func (r *Accounts) Sessions(ctx context.Context, accountID int64, now time.Time) ([]account.StoredSession, error) {
	rows, err := r.db.pool.Query(ctx, `
		SELECT id, hash, created_at, last_used_at, user_agent FROM sessions
		WHERE account_id = $1 AND expires_at > $2 AND absolute_expires_at > $2
		ORDER BY last_used_at DESC, id DESC`, accountID, now)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", interpret(err))
	}
	ss, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (account.StoredSession, error) {
		var s account.StoredSession
		err := row.Scan(&s.ID, &s.Hash, &s.CreatedAt, &s.LastUsedAt, &s.UserAgent)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", interpret(err))
	}
	return ss, nil
}

// DeleteSessionByID implements account.Repository. Another account's
// session is left alone, as a missing one is.
func (r *Accounts) DeleteSessionByID(ctx context.Context, accountID, id int64) error {
	if _, err := r.db.pool.Exec(ctx, `DELETE FROM sessions WHERE account_id = $1 AND id = $2`, accountID, id); err != nil {
		return fmt.Errorf("delete session: %w", interpret(err))
	}
	return nil
}

// DeleteOtherSessions implements account.Repository.
func (r *Accounts) DeleteOtherSessions(ctx context.Context, accountID int64, keep []byte) (int64, error) {
	tag, err := r.db.pool.Exec(ctx, `
		DELETE FROM sessions WHERE account_id = $1 AND hash IS DISTINCT FROM $2`, accountID, keep)
	if err != nil {
		return 0, fmt.Errorf("delete other sessions: %w", interpret(err))
	}
	return tag.RowsAffected(), nil
}
