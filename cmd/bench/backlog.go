package main

import (
	"context"
	"fmt"
	"time"

	"signup/internal/account"
	"signup/internal/devmail"
)

func backlogDrain(sz sizes) *scenario {
	return &scenario{
		name:     fmt.Sprintf("emails/s draining a %d backlog", sz.backlog),
		unit:     "emails/s",
		baseUnit: "emails/s",
		goal:     &goal{text: "ratio ≥ 0.5", atLeast: true, limit: 0.5},
		note: fmt.Sprintf("%d accounts, each with a pending confirmation in the outbox (what a signup writes), inserted in bulk "+
			"before the web process starts; timed from launching it until devmail has accepted them all, so the figure includes "+
			"its start (tens of ms). Baseline: one go-mail client, dialled once, sending %d messages with the same content as the "+
			"product's one by one over that connection to the same devmail.", sz.backlog, sz.backlog),
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			db, err := h.newDatabase(ctx)
			if err != nil {
				return measurement{}, err
			}
			defer db.Close()
			if err := fillBacklog(ctx, db, sz.backlog); err != nil {
				return measurement{}, err
			}
			peer, err := startDevmail(ctx, devmail.Faults{})
			if err != nil {
				return measurement{}, err
			}
			defer stopDevmail(peer)

			start := time.Now()
			web, err := launch(h.webBin, webEnv(db.url, peer.SMTPURL(), "127.0.0.1:0"))
			if err != nil {
				return measurement{}, err
			}
			defer web.kill()
			if err := waitReceived(ctx, peer, int64(sz.backlog)); err != nil {
				return measurement{}, fmt.Errorf("%w\nweb log:\n%s", err, web.log())
			}
			drained := float64(sz.backlog) / time.Since(start).Seconds()
			web.kill()

			body, err := firstMessage(ctx, peer)
			if err != nil {
				return measurement{}, err
			}
			raw, err := rawSend(ctx, peer, body, sz.backlog)
			if err != nil {
				return measurement{}, err
			}
			return measurement{value: drained, baseline: raw, detail: fmt.Sprintf("message %d bytes", body.size)}, nil
		},
	}
}

// fillBacklog inserts n accounts and their pending confirmation emails, due
// now: the rows a signup writes, without the hashing.
func fillBacklog(ctx context.Context, db *benchDB, n int) error {
	hash, err := account.NewHasher(account.DefaultParams(), 1).Hash(ctx, password)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Minute)
	steps := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO accounts (email, password_hash, created_at)
		  SELECT 'backlog-' || i || '@example.com', $1, $2 FROM generate_series(1, $3) i`, []any{hash, now, n}},
		{`INSERT INTO outbox (account_id, kind, created_at, next_attempt_at)
		  SELECT id, 'confirm', $1, $1 FROM accounts ORDER BY id`, []any{now}},
		{`ANALYZE`, nil},
	}
	for _, st := range steps {
		if _, err := db.Pool().Exec(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("fill backlog: %w", err)
		}
	}
	return nil
}

// waitReceived blocks until peer has accepted n messages.
func waitReceived(ctx context.Context, peer *devmail.Server, n int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	// Attempts counts DATA transfers, which come just before acceptance;
	// with no faults injected, every one is accepted.
	if err := peer.WaitAttempts(ctx, n); err != nil {
		return fmt.Errorf("wait for %d emails (have %d): %w", n, peer.Received(), err)
	}
	for peer.Received() < n {
		if ctx.Err() != nil {
			return fmt.Errorf("wait for %d emails (have %d): %w", n, peer.Received(), ctx.Err())
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

// rawSend sends n messages with body's content over one go-mail
// connection, one by one, and returns how many went per second.
func rawSend(ctx context.Context, peer *devmail.Server, body sample, n int) (float64, error) {
	client, err := smtpClient(peer)
	if err != nil {
		return 0, err
	}
	before := peer.Received()
	start := time.Now()
	if err := client.DialWithContext(ctx); err != nil {
		return 0, fmt.Errorf("raw send: dial: %w", err)
	}
	defer client.Close()
	for i := range n {
		msg, err := body.message(fmt.Sprintf("raw-%d@example.com", i), "")
		if err != nil {
			return 0, err
		}
		if err := client.Send(msg); err != nil {
			return 0, fmt.Errorf("raw send: message %d: %w", i, err)
		}
	}
	elapsed := time.Since(start)
	if got := peer.Received() - before; got != int64(n) {
		return 0, fmt.Errorf("raw send: devmail received %d of %d", got, n)
	}
	return float64(n) / elapsed.Seconds(), nil
}
