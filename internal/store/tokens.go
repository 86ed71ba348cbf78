package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/account"
)

// tokenRow is a token with its account, as a link's use reads it.
type tokenRow struct {
	accountID  int64
	email      string // the account's address
	newEmail   string // an email change's address
	pwHash     string // a confirmation's password hash
	used       bool
	expired    bool
	superseded bool
	confirmed  bool // the account is confirmed
}

// readToken reads the token of purpose with hash. When lock is set it
// locks the token's account, then the token, in two statements: the order
// of every writer (the purge's DELETE of an account cascades to its
// tokens; a token locked first deadlocked against a purge batch).
func readToken(ctx context.Context, q querier, purpose account.TokenPurpose, hash []byte, now time.Time, lock bool) (tokenRow, error) {
	var (
		t               tokenRow
		pwHash, newMail *string
	)
	if lock {
		var id int64
		err := q.QueryRow(ctx, `
			SELECT a.id FROM accounts a
			WHERE a.id = (SELECT t.account_id FROM tokens t WHERE t.hash = $1 AND t.purpose = $2)
			FOR UPDATE`, hash, string(purpose)).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return t, account.ErrTokenInvalid
		}
		if err != nil {
			return t, fmt.Errorf("lock account of token: %w", interpret(err))
		}
	}
	sql := `
		SELECT t.account_id, a.email, t.email, t.password_hash, t.used_at IS NOT NULL, t.expires_at <= $3,
		       t.superseded_at IS NOT NULL, a.confirmed_at IS NOT NULL
		FROM tokens t JOIN accounts a ON a.id = t.account_id
		WHERE t.hash = $1 AND t.purpose = $2`
	if lock {
		sql += ` FOR UPDATE OF t`
	}
	err := q.QueryRow(ctx, sql, hash, string(purpose), now).Scan(
		&t.accountID, &t.email, &newMail, &pwHash, &t.used, &t.expired, &t.superseded, &t.confirmed)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, account.ErrTokenInvalid
	}
	if err != nil {
		return t, fmt.Errorf("read token: %w", interpret(err))
	}
	if pwHash != nil {
		t.pwHash = *pwHash
	}
	if newMail != nil {
		t.newEmail = *newMail
	}
	return t, nil
}

// state judges a token: nil when it can be used. A confirmation of a
// confirmed account is dead whatever else holds.
func (t tokenRow) state(purpose account.TokenPurpose) error {
	switch {
	case purpose == account.PurposeConfirm && t.confirmed:
		return account.ErrAlreadyConfirmed
	case purpose == account.PurposeEmailChange && strings.EqualFold(t.email, t.newEmail):
		return account.ErrTokenUsed
	case t.used:
		return account.ErrTokenUsed
	case t.superseded:
		return account.ErrTokenSuperseded
	case t.expired:
		return account.ErrTokenExpired
	}
	return nil
}

// CheckToken implements account.Repository.
func (r *Accounts) CheckToken(ctx context.Context, purpose account.TokenPurpose, hash []byte, now time.Time) (account.TokenState, error) {
	t, err := readToken(ctx, r.db.pool, purpose, hash, now, false)
	if err != nil {
		return account.TokenState{}, err
	}
	if err := t.state(purpose); err != nil {
		return account.TokenState{Email: t.email}, err
	}
	return account.TokenState{AccountID: t.accountID, Email: t.email, NewEmail: t.newEmail, HasPassword: t.pwHash != ""}, nil
}

// spendToken locks and checks the token of purpose with hash and marks it
// used; the caller's transaction does the rest.
func spendToken(ctx context.Context, tx pgx.Tx, purpose account.TokenPurpose, hash []byte, now time.Time) (tokenRow, error) {
	t, err := readToken(ctx, tx, purpose, hash, now, true)
	if err != nil {
		return t, err
	}
	if err := t.state(purpose); err != nil {
		return t, err
	}
	if _, err := tx.Exec(ctx, `UPDATE tokens SET used_at = $2 WHERE hash = $1`, hash, now); err != nil {
		return t, fmt.Errorf("spend token: %w", interpret(err))
	}
	return t, nil
}

// supersede kills the live tokens of purpose of an account.
func supersede(ctx context.Context, q querier, accountID int64, purpose account.TokenPurpose, now time.Time) error {
	_, err := q.Exec(ctx, `
		UPDATE tokens SET superseded_at = $3
		WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL AND superseded_at IS NULL`,
		accountID, string(purpose), now)
	if err != nil {
		return fmt.Errorf("supersede %s tokens: %w", purpose, interpret(err))
	}
	return nil
}

// Confirm implements account.Repository.
func (r *Accounts) Confirm(ctx context.Context, hash []byte, passwordHash string, now time.Time) (account.Account, error) {
	var id int64
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		t, err := spendToken(ctx, tx, account.PurposeConfirm, hash, now)
		if err != nil {
			return err
		}
		pw := t.pwHash
		if pw == "" {
			pw = passwordHash
		}
		if pw == "" {
			return errors.New("confirm: no password for the account")
		}
		id = t.accountID
		_, err = tx.Exec(ctx, `
			UPDATE accounts SET confirmed_at = $2, last_seen_at = $2, password_hash = $3
			WHERE id = $1 AND confirmed_at IS NULL`, id, now, pw)
		if err != nil {
			return fmt.Errorf("confirm account: %w", interpret(err))
		}
		return nil
	})
	if err != nil {
		return account.Account{}, err
	}
	return r.AccountByID(ctx, id)
}

// Reset implements account.Repository.
func (r *Accounts) Reset(ctx context.Context, hash []byte, passwordHash string, now time.Time) (account.Account, int64, error) {
	var id, outboxID int64
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		t, err := spendToken(ctx, tx, account.PurposeReset, hash, now)
		if err != nil {
			return err
		}
		id = t.accountID
		if err := supersede(ctx, tx, id, account.PurposeReset, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE accounts SET password_hash = $2, confirmed_at = coalesce(confirmed_at, $3),
				last_seen_at = coalesce(last_seen_at, $3)
			WHERE id = $1`, id, passwordHash, now)
		if err != nil {
			return fmt.Errorf("set password: %w", interpret(err))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE account_id = $1`, id); err != nil {
			return fmt.Errorf("end sessions: %w", interpret(err))
		}
		outboxID, err = queueMail(ctx, tx, id, account.MailPasswordChanged, "", now)
		return err
	})
	if err != nil {
		return account.Account{}, 0, err
	}
	a, err := r.AccountByID(ctx, id)
	return a, outboxID, err
}

// lockAccount locks an account's row for the transaction and returns its
// address: ErrNotFound when it is gone.
func lockAccount(ctx context.Context, tx pgx.Tx, id int64) (string, error) {
	var email string
	err := tx.QueryRow(ctx, `SELECT email FROM accounts WHERE id = $1 FOR UPDATE`, id).Scan(&email)
	if err != nil {
		return "", fmt.Errorf("lock account: %w", accountErr(err))
	}
	return email, nil
}

// ChangePassword implements account.Repository.
func (r *Accounts) ChangePassword(ctx context.Context, accountID int64, passwordHash string, keepSession []byte, now time.Time) (int64, error) {
	var outboxID int64
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := lockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET password_hash = $2 WHERE id = $1`, accountID, passwordHash); err != nil {
			return fmt.Errorf("set password: %w", interpret(err))
		}
		if _, err := tx.Exec(ctx, `
			DELETE FROM sessions WHERE account_id = $1 AND hash IS DISTINCT FROM $2`, accountID, keepSession); err != nil {
			return fmt.Errorf("end other sessions: %w", interpret(err))
		}
		var err error
		outboxID, err = queueMail(ctx, tx, accountID, account.MailPasswordChanged, "", now)
		return err
	})
	return outboxID, err
}

// RequestEmailChange implements account.Repository. The link goes to the
// new address only when it has no account, and the notice to the current
// address only when the new address's limits allow the link; the work is
// the same either way.
func (r *Accounts) RequestEmailChange(ctx context.Context, accountID int64, newEmail string, now time.Time, turn account.MailTurn) ([]int64, error) {
	var ids []int64
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		old, err := lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			WITH `+quotaCTE("$3::text", "$4::text", "$2::timestamptz", "$5::bigint * interval '1 microsecond'", "$6::integer")+`,
			link AS (
				INSERT INTO outbox (account_id, kind, recipient, created_at, next_attempt_at)
				SELECT $7, $8, $1, $2, $2 FROM quota
				WHERE quota.allowed AND NOT EXISTS (SELECT 1 FROM accounts WHERE lower(email) = lower($1))
				RETURNING id
			), notice AS (
				INSERT INTO outbox (account_id, kind, recipient, created_at, next_attempt_at)
				SELECT $7, $9, $10, $2, $2 FROM quota WHERE quota.allowed
				RETURNING id
			)
			SELECT id FROM link UNION ALL SELECT id FROM notice`,
			newEmail, now, turn.Address, turn.Kind, micros(turn.Cooldown), turn.DailyCap,
			accountID, string(account.MailEmailChange), string(account.MailEmailChangeNotice), old)
		if err != nil {
			return fmt.Errorf("queue email change: %w", interpret(err))
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("queue email change: %w", interpret(err))
		}
		return nil
	})
	return ids, err
}

// ConfirmEmailChange implements account.Repository.
func (r *Accounts) ConfirmEmailChange(ctx context.Context, hash []byte, now time.Time) (account.Account, error) {
	var id int64
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		t, err := spendToken(ctx, tx, account.PurposeEmailChange, hash, now)
		if err != nil {
			return err
		}
		id = t.accountID
		if err := supersede(ctx, tx, id, account.PurposeEmailChange, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE accounts SET email = $2 WHERE id = $1`, id, t.newEmail)
		if err != nil {
			if errors.Is(interpret(err), ErrConflict) {
				return account.ErrEmailTaken
			}
			return fmt.Errorf("change address: %w", interpret(err))
		}
		return nil
	})
	if err != nil {
		return account.Account{}, err
	}
	return r.AccountByID(ctx, id)
}

// DeleteAccount implements account.Repository. The account's sessions,
// tokens and outbox rows go with it by ON DELETE CASCADE; the goodbye is
// queued with no account, to its address, so it stays.
func (r *Accounts) DeleteAccount(ctx context.Context, accountID int64, now time.Time) (int64, error) {
	var outboxID int64
	err := r.db.inTx(ctx, func(tx pgx.Tx) error {
		email, err := lockAccount(ctx, tx, accountID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM accounts WHERE id = $1`, accountID); err != nil {
			return fmt.Errorf("delete account: %w", interpret(err))
		}
		outboxID, err = queueMail(ctx, tx, 0, account.MailAccountDeleted, email, now)
		return err
	})
	return outboxID, err
}
