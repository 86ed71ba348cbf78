package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"signup/internal/devmail"
	"signup/internal/purge"
)

// purgeDataNote describes the purge data set, for the notes.
func purgeDataNote(sz sizes) string {
	return fmt.Sprintf("%d purge-eligible accounts: half unconfirmed for 20 days (an expired confirmation token and a sent "+
		"confirmation each), half dormant (confirmed, last seen 380 days ago, warned 10 days ago; an expired session, a used "+
		"token, a sent confirmation and a sent warning each), beside %d active accounts (a live session, a recent sent email) "+
		"that stay: %d tokens, %d sessions and %d outbox rows in all. Generated once with INSERT … SELECT generate_series, "+
		"VACUUM (FREEZE, ANALYZE)d, and copied (CREATE DATABASE … TEMPLATE) fresh for every measurement.",
		sz.purgeAccounts, sz.purgeAccounts/10, sz.purgeAccounts, sz.purgeAccounts/2+sz.purgeAccounts/10,
		sz.purgeAccounts*3/2+sz.purgeAccounts/10)
}

func purgeDuration(sz sizes) *scenario {
	return &scenario{
		name:     fmt.Sprintf("purge of %s eligible accounts with dependents", count(sz.purgeAccounts)),
		unit:     "s",
		baseUnit: "s",
		goal:     &goal{text: "ratio ≤ 2.0", limit: 2},
		note: purgeDataNote(sz) + " Purge: purge.New with web's defaults (batches of 1,000, each its own transaction) and " +
			"RunOnce with Force (the data set is over the safety limit's share), in the bench process, no other load. " +
			"Baseline: one DELETE FROM accounts with the same policy predicates on another fresh copy; dependents go by " +
			"ON DELETE CASCADE in both. Both must delete exactly the eligible accounts.",
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			tmpl, err := h.purgeData(ctx, sz.purgeAccounts)
			if err != nil {
				return measurement{}, err
			}
			batched, err := h.onCopy(ctx, tmpl, func(db *benchDB) (time.Duration, error) {
				return timePurge(ctx, db, int64(sz.purgeAccounts))
			})
			if err != nil {
				return measurement{}, err
			}
			single, err := h.onCopy(ctx, tmpl, func(db *benchDB) (time.Duration, error) {
				return timeSingleDelete(ctx, db, int64(sz.purgeAccounts))
			})
			if err != nil {
				return measurement{}, err
			}
			return measurement{value: batched.Seconds(), baseline: single.Seconds()}, nil
		},
	}
}

func purgeLatency(sz sizes) *scenario {
	return &scenario{
		name:     "signup p99 during that purge",
		unit:     "ms",
		baseUnit: "ms",
		goal:     &goal{text: "ratio ≤ 1.5", limit: 1.5},
		note: fmt.Sprintf("The web process on a fresh copy of the purge data set (its purge schedule set to yearly and the "+
			"current tick recorded as served, so that it does not purge by itself). Baseline: %d signups/s at a constant "+
			"arrival rate for %v with no purge. Then the same rate for as long as the forced purge (as in the row above) takes. "+
			"p99 of each; p50s and the purge's duration are in the per-run figures.", sz.purgeLoadRate, sz.purgeQuietFor()),
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			tmpl, err := h.purgeData(ctx, sz.purgeAccounts)
			if err != nil {
				return measurement{}, err
			}
			var m measurement
			_, err = h.onCopy(ctx, tmpl, func(db *benchDB) (time.Duration, error) {
				var err error
				m, err = signupsDuringPurge(ctx, h, db, sz)
				return 0, err
			})
			return m, err
		},
	}
}

// purgeQuietFor is how long signups are measured without a purge.
func (sz sizes) purgeQuietFor() time.Duration {
	if sz.purgeAccounts < 100_000 {
		return 2 * time.Second
	}
	// 300 answers at 10/s, so that p99 is not just the maximum.
	return 30 * time.Second
}

func signupsDuringPurge(ctx context.Context, h *harness, db *benchDB, sz sizes) (measurement, error) {
	peer, err := startDevmail(ctx, devmail.Faults{})
	if err != nil {
		return measurement{}, err
	}
	defer stopDevmail(peer)
	web, base, err := h.startWeb(ctx, db.url, peer.SMTPURL(), "PURGE_SCHEDULE=0 3 1 1 *")
	if err != nil {
		return measurement{}, err
	}
	defer web.kill()
	tr := signupTargeter(base)
	atRate(ctx, tr, sz.purgeLoadRate, time.Second) // warm up
	quiet := atRate(ctx, tr, sz.purgeLoadRate, sz.purgeQuietFor())
	if err := expect(quiet, http.StatusSeeOther, h.progress); err != nil {
		return measurement{}, fmt.Errorf("without purge: %w", err)
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	loaded := make(chan *vegeta.Metrics, 1)
	go func() { loaded <- atRate(loadCtx, tr, sz.purgeLoadRate, 0) }()
	took, err := timePurge(ctx, db, int64(sz.purgeAccounts))
	stopLoad()
	during := <-loaded
	if err != nil {
		return measurement{}, err
	}
	if err := expect(during, http.StatusSeeOther, h.progress); err != nil {
		return measurement{}, fmt.Errorf("during purge: %w", err)
	}
	return measurement{
		value:    ms(during.Latencies.P99),
		baseline: ms(quiet.Latencies.P99),
		detail: fmt.Sprintf("p50 %s ms during, %s ms without; purge took %s s under load, %d signups during it",
			fmtNum(ms(during.Latencies.P50)), fmtNum(ms(quiet.Latencies.P50)), fmtNum(took.Seconds()), during.Requests),
	}, nil
}

// timePurge runs the product's purge once, forced, and checks it deleted
// exactly the eligible accounts.
func timePurge(ctx context.Context, db *benchDB, eligible int64) (time.Duration, error) {
	p, err := purge.New(purge.Config{Store: db.Purges()})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	rep, err := p.RunOnce(ctx, purge.Options{Force: true})
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("purge: %w", err)
	}
	c := rep.Counts
	if got := c.Unconfirmed + c.Dormant; got != eligible || c.Warned != 0 {
		return 0, fmt.Errorf("purge deleted %d accounts and warned %d, want %d and 0 (counts %+v)", got, c.Warned, eligible, c)
	}
	return took, nil
}

// timeSingleDelete deletes the eligible accounts in one statement, with
// the purge's policy predicates (store/purge.go) and cut-offs at their
// defaults.
func timeSingleDelete(ctx context.Context, db *benchDB, eligible int64) (time.Duration, error) {
	now := time.Now()
	start := time.Now()
	tag, err := db.Pool().Exec(ctx, `
		DELETE FROM accounts a
		WHERE (a.confirmed_at IS NULL AND a.created_at < $1
		       OR a.warned_at IS NOT NULL AND a.warned_at < $2 AND a.last_seen_at < a.warned_at)
		  AND NOT EXISTS (
		       SELECT 1 FROM outbox o WHERE o.account_id = a.id AND (o.status = 'pending' OR o.status = 'sending'))`,
		now.Add(-purge.DefaultUnconfirmedRetention), now.Add(-purge.DefaultInactiveWarning))
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("single delete: %w", err)
	}
	if tag.RowsAffected() != eligible {
		return 0, fmt.Errorf("single delete removed %d accounts, want %d", tag.RowsAffected(), eligible)
	}
	return took, nil
}

// onCopy runs f on a fresh copy of the template database, dropped after.
func (h *harness) onCopy(ctx context.Context, tmpl string, f func(*benchDB) (time.Duration, error)) (time.Duration, error) {
	name, err := h.createDatabase(ctx, tmpl)
	if err != nil {
		return 0, err
	}
	st, err := h.open(ctx, name)
	if err != nil {
		return 0, err
	}
	db := &benchDB{DB: st, name: name, url: h.url(name), h: h}
	defer db.Close()
	return f(db)
}

// purgeData returns the name of a template database holding the purge data
// set for n eligible accounts, building it on first use.
func (h *harness) purgeData(ctx context.Context, n int) (string, error) {
	if h.purgeTemplate != "" {
		return h.purgeTemplate, nil
	}
	start := time.Now()
	h.progress("  generating the purge data set (%s eligible accounts), once", count(n))
	db, err := h.newDatabase(ctx)
	if err != nil {
		return "", err
	}
	if err := fillPurgeData(ctx, db, n); err != nil {
		db.Close()
		return "", err
	}
	// Copies need the template to have no session.
	db.DB.Close()
	h.purgeTemplate = db.name
	h.progress("  purge data set ready in %v", time.Since(start).Round(time.Second))
	return db.name, nil
}

func fillPurgeData(ctx context.Context, db *benchDB, n int) error {
	const hash = "$argon2id$v=19$m=19456,t=2,p=1$YmVuY2hzYWx0YmVuY2hzYQ$YmVuY2hrZXliZW5jaGtleWJlbmNoa2V5YmVuY2hrZXk"
	now := time.Now()
	half, active := n/2, n/10
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"unconfirmed accounts", `
			INSERT INTO accounts (email, password_hash, created_at)
			SELECT 'unconfirmed-' || i || '@example.com', $2, $1::timestamptz - interval '20 days' + i * interval '1 ms'
			FROM generate_series(1, $3) i`, []any{now, hash, n - half}},
		{"dormant accounts", `
			INSERT INTO accounts (email, password_hash, created_at, confirmed_at, last_seen_at, warned_at)
			SELECT 'dormant-' || i || '@example.com', $2, $1::timestamptz - interval '400 days', $1::timestamptz - interval '400 days',
			       $1::timestamptz - interval '380 days' + i * interval '1 ms', $1::timestamptz - interval '10 days' + i * interval '1 ms'
			FROM generate_series(1, $3) i`, []any{now, hash, half}},
		{"active accounts", `
			INSERT INTO accounts (email, password_hash, created_at, confirmed_at, last_seen_at)
			SELECT 'active-' || i || '@example.com', $2, $1::timestamptz - interval '100 days', $1::timestamptz - interval '100 days',
			       $1::timestamptz - interval '1 hour' + i * interval '1 ms'
			FROM generate_series(1, $3) i`, []any{now, hash, active}},
		{"tokens", `
			INSERT INTO tokens (hash, account_id, purpose, created_at, expires_at, used_at)
			SELECT sha256(('token-' || id)::bytea), id, 'confirm', created_at, created_at + interval '24 hours', confirmed_at
			FROM accounts WHERE last_seen_at IS NULL OR last_seen_at < $1::timestamptz - interval '1 day'`, []any{now}},
		{"sessions", `
			INSERT INTO sessions (hash, account_id, created_at, last_used_at, expires_at, absolute_expires_at)
			SELECT sha256(('session-' || id)::bytea), id, last_seen_at, last_seen_at,
			       last_seen_at + interval '7 days', last_seen_at + interval '30 days'
			FROM accounts WHERE confirmed_at IS NOT NULL`, nil},
		{"outbox", `
			INSERT INTO outbox (account_id, kind, status, attempts, created_at, next_attempt_at, sent_at)
			SELECT id, 'confirm', 'sent', 1, created_at, created_at, created_at + interval '1 second'
			FROM accounts WHERE last_seen_at IS NULL OR last_seen_at < $1::timestamptz - interval '1 day'
			UNION ALL
			SELECT id, 'inactive_warning', 'sent', 1, warned_at, warned_at, warned_at + interval '1 second'
			FROM accounts WHERE warned_at IS NOT NULL
			UNION ALL
			SELECT id, 'signup_attempt', 'sent', 1, $1::timestamptz - interval '2 days', $1::timestamptz - interval '2 days', $1::timestamptz - interval '2 days'
			FROM accounts WHERE confirmed_at IS NOT NULL AND last_seen_at >= $1::timestamptz - interval '1 day'`, []any{now}},
		// So that a web started on a copy does not catch a purge up by
		// itself: the current tick counts as served.
		{"purge run record", `
			INSERT INTO purge_runs (instance, scheduled, started_at, finished_at)
			VALUES ('bench', $1, $1, $1)`, []any{now}},
		{"vacuum", `VACUUM (FREEZE, ANALYZE)`, nil},
	}
	for _, st := range steps {
		if _, err := db.Pool().Exec(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("purge data: %s: %w", st.what, err)
		}
	}
	return nil
}

// count prints 1000000 as "1,000,000".
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
