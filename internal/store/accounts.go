package store

import (
	"context"
	"errors"
	"fmt"
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
// new or taken: the account and its outbox row go in together, or, when
// the address has an account, only the mail to its owner. The two cases
// cost the same, so the answer's timing does not tell them apart. The one
// case the statement cannot settle, an address taken by a signup that
// committed while it ran (its snapshot does not see that account), falls
// back to a transaction that looks again.
func (r *Accounts) Signup(ctx context.Context, email, passwordHash string, now time.Time) (account.SignupResult, error) {
	var (
		res  account.SignupResult
		kind string
	)
	err := r.db.pool.QueryRow(ctx, `
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
		), queued AS (
			INSERT INTO outbox (account_id, kind, created_at, next_attempt_at)
			SELECT id, CASE WHEN confirmed THEN $4 ELSE $5 END, $3, $3 FROM owner
			RETURNING account_id, id, kind
		)
		SELECT q.account_id, q.id, q.kind, o.existing FROM queued q JOIN owner o ON o.id = q.account_id`,
		email, passwordHash, now, string(account.MailSignupAttempt), string(account.MailConfirm)).
		Scan(&res.AccountID, &res.OutboxID, &kind, &res.Existing)
	if errors.Is(err, pgx.ErrNoRows) {
		err = r.db.inTx(ctx, func(tx pgx.Tx) error {
			var err error
			res, err = signupTx(ctx, tx, email, passwordHash, now)
			return err
		})
		return res, err
	}
	if err != nil {
		return res, fmt.Errorf("sign up: %w", interpret(err))
	}
	res.Kind = account.MailKind(kind)
	return res, nil
}

// signupTx is Signup in a transaction of several statements, for the case
// its single statement cannot settle.
func signupTx(ctx context.Context, tx pgx.Tx, email, passwordHash string, now time.Time) (account.SignupResult, error) {
	res := account.SignupResult{Kind: account.MailConfirm}
	err := tx.QueryRow(ctx, `
		INSERT INTO accounts (email, password_hash, created_at)
		VALUES ($1, $2, $3)
		ON CONFLICT ((lower(email))) DO NOTHING
		RETURNING id`, email, passwordHash, now).Scan(&res.AccountID)
	if errors.Is(err, pgx.ErrNoRows) {
		// Taken: tell the owner instead, with the same amount of work.
		var confirmed bool
		err = tx.QueryRow(ctx, `
			SELECT id, confirmed_at IS NOT NULL FROM accounts WHERE lower(email) = lower($1)`,
			email).Scan(&res.AccountID, &confirmed)
		if err != nil {
			// Deleted between the two statements; the caller may retry.
			return res, fmt.Errorf("find existing account: %w", interpret(err))
		}
		res.Existing = true
		if confirmed {
			res.Kind = account.MailSignupAttempt
		}
	} else if err != nil {
		return res, fmt.Errorf("insert account: %w", interpret(err))
	}
	res.OutboxID, err = queueMail(ctx, tx, res.AccountID, res.Kind, now)
	return res, err
}

// queueMail inserts an outbox row due now.
func queueMail(ctx context.Context, q querier, accountID int64, kind account.MailKind, now time.Time) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `
		INSERT INTO outbox (account_id, kind, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $3)
		RETURNING id`, accountID, string(kind), now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("queue %s mail: %w", kind, interpret(err))
	}
	return id, nil
}

// QueueConfirmation implements account.Repository.
func (r *Accounts) QueueConfirmation(ctx context.Context, email string, now time.Time) (int64, bool, error) {
	var id int64
	err := r.db.pool.QueryRow(ctx, `
		INSERT INTO outbox (account_id, kind, created_at, next_attempt_at)
		SELECT id, 'confirm', $2, $2 FROM accounts
		WHERE lower(email) = lower($1) AND confirmed_at IS NULL
		RETURNING id`, email, now).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("queue confirmation: %w", interpret(err))
	}
	return id, true, nil
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
// tokens minted for emails, in one statement.
func (r *Accounts) CreateTokens(ctx context.Context, tokens []account.IssuedToken) error {
	if len(tokens) == 0 {
		return nil
	}
	var (
		accounts         = make([]int64, len(tokens))
		purposes         = make([]string, len(tokens))
		hashes           = make([][]byte, len(tokens))
		created, expires = make([]time.Time, len(tokens)), make([]time.Time, len(tokens))
	)
	for i, t := range tokens {
		accounts[i], purposes[i], hashes[i] = t.AccountID, string(t.Purpose), t.Hash
		created[i], expires[i] = t.CreatedAt, t.ExpiresAt
	}
	_, err := r.db.pool.Exec(ctx, `
		INSERT INTO tokens (hash, account_id, purpose, created_at, expires_at)
		SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::text[], $4::timestamptz[], $5::timestamptz[])`,
		hashes, accounts, purposes, created, expires)
	if err != nil {
		return fmt.Errorf("create tokens: %w", accountErr(err))
	}
	return nil
}

var _ account.TokenStore = (*Accounts)(nil)

// accountErr maps a missing row to the domain's ErrNotFound.
func accountErr(err error) error {
	err = interpret(err)
	if errors.Is(err, ErrNotFound) {
		return errors.Join(account.ErrNotFound, err)
	}
	return err
}

// UseToken implements account.Repository.
func (r *Accounts) UseToken(ctx context.Context, hash []byte, now time.Time) (int64, error) {
	var (
		id     int64
		result error
	)
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		// Locks are taken account first, then its tokens: the order of
		// the purge, whose DELETE of an account cascades to its tokens.
		// Locking the token first deadlocked against a purge batch.
		err := tx.QueryRow(ctx, `
			SELECT a.id FROM accounts a
			WHERE a.id = (SELECT t.account_id FROM tokens t WHERE t.hash = $1 AND t.purpose = 'confirm')
			FOR UPDATE`, hash).Scan(&id)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			result = account.ErrTokenInvalid
			return nil
		case err != nil:
			return fmt.Errorf("lock account of token: %w", interpret(err))
		}
		var used, expired, confirmed bool
		err = tx.QueryRow(ctx, `
			SELECT t.used_at IS NOT NULL, t.expires_at <= $2, a.confirmed_at IS NOT NULL
			FROM tokens t JOIN accounts a ON a.id = t.account_id
			WHERE t.hash = $1 AND t.purpose = 'confirm' AND t.account_id = $3
			FOR UPDATE OF t`, hash, now, id).Scan(&used, &expired, &confirmed)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			result = account.ErrTokenInvalid
			return nil
		case err != nil:
			return fmt.Errorf("find token: %w", interpret(err))
		case used, confirmed && expired:
			result = account.ErrTokenUsed
			return nil
		case expired:
			result = account.ErrTokenExpired
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET used_at = $2 WHERE hash = $1`, hash, now); err != nil {
			return fmt.Errorf("spend token: %w", interpret(err))
		}
		tag, err := tx.Exec(ctx, `
			UPDATE accounts SET confirmed_at = $2, last_seen_at = $2
			WHERE id = $1 AND confirmed_at IS NULL`, id, now)
		if err != nil {
			return fmt.Errorf("confirm account: %w", interpret(err))
		}
		if tag.RowsAffected() == 0 {
			// Confirmed already, through another link.
			result = account.ErrTokenUsed
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, result
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
		INSERT INTO sessions (hash, account_id, created_at, last_used_at, expires_at, absolute_expires_at)
		VALUES ($1, $2, $3, $3, $4, $5)`,
		s.Hash, s.AccountID, s.CreatedAt, s.ExpiresAt, s.AbsoluteExpiresAt)
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
