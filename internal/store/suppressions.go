package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Suppression is an address no mail is sent to any more: a server answered
// a message to it with a permanent rejection of the recipient.
type Suppression struct {
	// Address is the recipient, in lower case.
	Address string
	// Reply is the server's answer that put it on the list.
	Reply string
	// CreatedAt is when it was put on the list.
	CreatedAt time.Time
}

// FailAndSuppress settles row id as failed for good, keeping reply, and puts
// address on the suppression list, in one transaction. ok is false (and
// nothing changes) when instance no longer holds the row's lease.
func (o *Outbox) FailAndSuppress(ctx context.Context, id int64, instance, address, reply string, now time.Time) (ok bool, err error) {
	err = o.db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE outbox SET status = 'failed', last_error = $3, lease_until = NULL
			WHERE id = $1 AND status = 'sending' AND leased_by = $2`, id, instance, reply)
		if err != nil {
			return err
		}
		if ok = tag.RowsAffected() == 1; !ok {
			return nil
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO mail_suppressions (address, reply, created_at) VALUES (lower($1), $2, $3)
			ON CONFLICT (address) DO UPDATE SET reply = excluded.reply, created_at = excluded.created_at`,
			address, reply, now)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("fail outbox row %d and suppress its address: %w", id, interpret(err))
	}
	return ok, nil
}

// MarkSuppressed settles row id as suppressed: it was not sent, because its
// recipient is on the suppression list. ok is false when instance no
// longer holds the row's lease.
func (o *Outbox) MarkSuppressed(ctx context.Context, id int64, instance string) (bool, error) {
	tag, err := o.db.pool.Exec(ctx, `
		UPDATE outbox SET status = 'suppressed', lease_until = NULL
		WHERE id = $1 AND status = 'sending' AND leased_by = $2`, id, instance)
	if err != nil {
		return false, fmt.Errorf("mark outbox row %d suppressed: %w", id, interpret(err))
	}
	return tag.RowsAffected() == 1, nil
}

// Suppressions lists the suppressed addresses, newest first, at most limit.
func (o *Outbox) Suppressions(ctx context.Context, limit int) ([]Suppression, error) {
	rows, err := o.db.pool.Query(ctx, `
		SELECT address, reply, created_at FROM mail_suppressions
		ORDER BY created_at DESC, address LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list suppressions: %w", interpret(err))
	}
	ss, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Suppression])
	if err != nil {
		return nil, fmt.Errorf("list suppressions: %w", interpret(err))
	}
	return ss, nil
}

// Unsuppress takes address off the suppression list; ok is false when it
// was not on it.
func (o *Outbox) Unsuppress(ctx context.Context, address string) (bool, error) {
	tag, err := o.db.pool.Exec(ctx, `DELETE FROM mail_suppressions WHERE address = lower($1)`, address)
	if err != nil {
		return false, fmt.Errorf("remove suppression: %w", interpret(err))
	}
	return tag.RowsAffected() == 1, nil
}
