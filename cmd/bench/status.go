package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"signup/internal/hosted"
	"signup/internal/ops"
	"signup/internal/purge"
)

// statusReads is how many scrapes and dashboard renders are timed.
const statusReads = 20

func opsStatus(sz sizes) *scenario {
	return &scenario{
		name:     fmt.Sprintf("ops scrape and dashboard at %s outbox rows", count(sz.outboxRows)),
		unit:     "ms",
		baseUnit: "ms",
		goal:     &goal{text: "value < 50 ms", onValue: true, limit: 50},
		note: fmt.Sprintf("%s outbox rows of one account (99.8%% sent over 30 days, 0.1%% pending, 0.1%% failed), generated with "+
			"INSERT … SELECT generate_series and VACUUM (ANALYZE)d, as autovacuum would. Value: the slower median of %d Prometheus "+
			"scrapes (the registry's Gather, every collector) and %d renders of the status dashboard, in the bench process; both "+
			"medians and maxima are in the per-run figures. Baseline: the count by status the scrape used to run "+
			"(count(*) FILTER … FROM outbox), once.", count(sz.outboxRows), statusReads, statusReads),
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			return measureStatus(ctx, h, sz.outboxRows)
		},
	}
}

func measureStatus(ctx context.Context, h *harness, rows int) (measurement, error) {
	start := time.Now()
	h.progress("  generating %s outbox rows", count(rows))
	db, err := h.newDatabase(ctx)
	if err != nil {
		return measurement{}, err
	}
	defer db.Close()
	conn, err := db.Pool().Acquire(ctx)
	if err != nil {
		return measurement{}, err
	}
	for _, sql := range []string{
		`INSERT INTO accounts (email, password_hash, created_at) VALUES ('status@example.com', 'x', now())`,
		// One statement; the foreign key's check per row is skipped
		// (replica mode), as the rows all point at the one account.
		`SET session_replication_role = replica`,
		fmt.Sprintf(`INSERT INTO outbox (account_id, kind, status, attempts, created_at, next_attempt_at, sent_at)
			SELECT (SELECT min(id) FROM accounts), 'confirm',
			       CASE WHEN i %% 1000 = 0 THEN 'failed' WHEN i %% 997 = 0 THEN 'pending' ELSE 'sent' END, 1,
			       now() - i * interval '30 days' / %d, now() - i * interval '30 days' / %d,
			       CASE WHEN i %% 1000 <> 0 AND i %% 997 <> 0 THEN now() - i * interval '30 days' / %d END
			FROM generate_series(1, %d) i`, rows, rows, rows, rows),
		`SET session_replication_role = DEFAULT`,
		`VACUUM (ANALYZE) outbox`,
	} {
		// One connection: the replica mode is a session setting.
		if _, err := conn.Exec(ctx, sql); err != nil {
			conn.Release()
			return measurement{}, fmt.Errorf("generate outbox: %w", err)
		}
	}
	conn.Release()
	h.progress("  outbox ready in %v", time.Since(start).Round(time.Second))

	registry := prometheus.NewRegistry()
	queue := hosted.NewQueue[int](16)
	states := func() []hosted.State { return []hosted.State{{Name: "mail", Status: hosted.StatusRunning}} }
	if _, err := ops.NewMetrics(registry, ops.MetricsConfig{
		Services: states, Queue: queue, Outbox: db.Outbox(), Purges: db.Purges(), Logger: slog.New(slog.DiscardHandler),
	}); err != nil {
		return measurement{}, err
	}
	purger, err := purge.New(purge.Config{Store: db.Purges()})
	if err != nil {
		return measurement{}, err
	}
	dash, err := ops.NewDashboard(ops.DashboardConfig{
		Services: states, Queue: queue, Outbox: db.Outbox(), Purges: purger,
		Enqueue: func(int64) bool { return false },
	})
	if err != nil {
		return measurement{}, err
	}
	scrape := func() error { _, err := registry.Gather(); return err }
	render := func() error {
		rec := httptest.NewRecorder()
		dash.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			return fmt.Errorf("dashboard answered %d", rec.Code)
		}
		return nil
	}
	scrapes, err := timeEach(ctx, scrape)
	if err != nil {
		return measurement{}, fmt.Errorf("scrape: %w", err)
	}
	renders, err := timeEach(ctx, render)
	if err != nil {
		return measurement{}, fmt.Errorf("dashboard: %w", err)
	}
	t0 := time.Now()
	if _, err := db.Pool().Exec(ctx, `SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'sending'),
		count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed') FROM outbox`); err != nil {
		return measurement{}, fmt.Errorf("baseline count: %w", err)
	}
	full := time.Since(t0)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return measurement{
		value:    ms(max(scrapes[len(scrapes)/2], renders[len(renders)/2])),
		baseline: ms(full),
		detail: fmt.Sprintf("scrape p50 %.1f ms, max %.1f ms; dashboard p50 %.1f ms, max %.1f ms; full count %.0f ms",
			ms(scrapes[len(scrapes)/2]), ms(scrapes[len(scrapes)-1]), ms(renders[len(renders)/2]), ms(renders[len(renders)-1]), ms(full)),
	}, nil
}

// timeEach runs fn statusReads times and returns the durations, sorted.
func timeEach(ctx context.Context, fn func() error) ([]time.Duration, error) {
	ds := make([]time.Duration, 0, statusReads)
	for range statusReads {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := time.Now()
		if err := fn(); err != nil {
			return nil, err
		}
		ds = append(ds, time.Since(t))
	}
	slices.Sort(ds)
	return ds, nil
}
