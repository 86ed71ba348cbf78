package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"signup/internal/account"
	"signup/internal/devmail"
	appmail "signup/internal/mail"
)

// drainConns is how many SMTP connections every side of the drain rows
// uses: the mail sender's default worker count, one connection each.
const drainConns = appmail.DefaultWorkers

func backlogDrain(sz sizes) *scenario {
	return &scenario{
		name:     fmt.Sprintf("emails/s draining a %d backlog", sz.backlog),
		unit:     "emails/s",
		baseUnit: "emails/s",
		goal:     &goal{text: "ratio ≥ 0.8", atLeast: true, limit: 0.8},
		note: fmt.Sprintf("%d accounts, each with a pending confirmation in the outbox (what a signup writes), inserted in bulk "+
			"before the web process starts; timed from launching it until a lean SMTP sink (go-smtp, accepts and counts, no "+
			"parsing) has accepted them all, so the figure includes its start (tens of ms). Baseline: raw go-mail, %d clients "+
			"(the sender's worker count), each dialled once and sending its share of %d messages with the same content as the "+
			"product's, one by one over its connection, to the same sink. The River row is measured in the same round.",
			sz.backlog, drainConns, sz.backlog),
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			d, err := h.drainRound(ctx, sz.backlog)
			if err != nil {
				return measurement{}, err
			}
			return measurement{value: d.ours, baseline: d.raw, detail: fmt.Sprintf("message %d bytes; River %s emails/s (%.3f of raw)",
				d.size, fmtNum(d.river.perSecond), d.river.perSecond/d.raw)}, nil
		},
	}
}

func drainVersusRiver(sz sizes) *scenario {
	return &scenario{
		name:     fmt.Sprintf("drain of %d: ours ÷ River", sz.backlog),
		unit:     "emails/s",
		baseUnit: "emails/s (River)",
		goal:     &goal{text: "ratio ≥ 1.5", atLeast: true, limit: 1.5},
		note: fmt.Sprintf("The round of the row above, River's side: riverqueue/river with riverpgxv5, migrated by rivermigrate "+
			"into a database of its own, %d jobs inserted with InsertManyFast before its client starts, one job per email; its "+
			"worker builds the same message with go-mail and sends it over one of %d reused connections to the same sink "+
			"(MaxWorkers %d, FetchCooldown %v: its best of those tried, see cmd/bench/river.go). Timed from Start until the sink "+
			"has them all. The ratio is ours ÷ River, which equals the quotient of the two ratios to raw go-mail.",
			sz.backlog, drainConns, riverMaxWorkers, riverFetchCooldown),
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			d, err := h.drainRound(ctx, sz.backlog)
			if err != nil {
				return measurement{}, err
			}
			return measurement{value: d.ours, baseline: d.river.perSecond,
				detail: fmt.Sprintf("ours %.3f of raw, River %.3f of raw", d.ours/d.raw, d.river.perSecond/d.raw)}, nil
		},
	}
}

func drainPGCPU(sz sizes) *scenario {
	return &scenario{
		name:     "PostgreSQL CPU per email, draining",
		unit:     "µs/email",
		baseUnit: "µs/email (River)",
		goal:     &goal{text: "≤ 200 µs", onValue: true, limit: 200},
		note: "The same round: CPU time (utime + stime from /proc/<pid>/stat) of the PostgreSQL backends pg_stat_activity lists " +
			"for the drain's database, read just before the drain starts and just after the sink has every message (the " +
			"senders' connections still open), divided by the emails sent. Ours against River's; clock ticks of 10 ms.",
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			d, err := h.drainRound(ctx, sz.backlog)
			if err != nil {
				return measurement{}, err
			}
			per := func(t time.Duration) float64 { return float64(t.Microseconds()) / float64(sz.backlog) }
			return measurement{value: per(d.oursPG), baseline: per(d.river.pgCPU)}, nil
		},
	}
}

// drainResult is one round of the drain rows: our sender, River and raw
// go-mail, one after the other, into the same sink.
type drainResult struct {
	ours, raw float64 // emails/s
	oursPG    time.Duration
	river     riverResult
	size      int
}

// drainRound measures a round of the drain rows once per run: the rows
// that share it take the same figures.
func (h *harness) drainRound(ctx context.Context, n int) (*drainResult, error) {
	h.mu.Lock()
	if d := h.drains[h.run]; d != nil {
		h.mu.Unlock()
		return d, nil
	}
	h.mu.Unlock()
	d, err := measureDrain(ctx, h, n)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.drains[h.run] = d
	h.mu.Unlock()
	return d, nil
}

func measureDrain(ctx context.Context, h *harness, n int) (*drainResult, error) {
	db, err := h.newDatabase(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := fillBacklog(ctx, db, n); err != nil {
		return nil, err
	}
	snk, err := startSink()
	if err != nil {
		return nil, err
	}
	defer snk.close()

	cpu0, err := backendCPU(ctx, h, db.name)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	web, err := launch(h.webBin, webEnv(db.url, snk.url(), "127.0.0.1:0"))
	if err != nil {
		return nil, err
	}
	defer web.kill()
	if err := snk.wait(ctx, int64(n)); err != nil {
		return nil, fmt.Errorf("%w\nweb log:\n%s", err, web.log())
	}
	d := &drainResult{ours: float64(n) / time.Since(start).Seconds()}
	cpu1, err := backendCPU(ctx, h, db.name)
	if err != nil {
		return nil, err
	}
	d.oursPG = cpu1.since(cpu0)
	web.kill()

	body, err := snk.sample()
	if err != nil {
		return nil, err
	}
	d.size = body.size
	if d.river, err = riverDrain(ctx, h, snk, body, n, drainConns, riverMaxWorkers, riverFetchCooldown); err != nil {
		return nil, err
	}
	if d.raw, err = rawSendPooled(ctx, snk, body, n, drainConns); err != nil {
		return nil, err
	}
	return d, nil
}

// rawSendPooled sends n messages with body's content over conns go-mail
// connections, each dialled once and used by one goroutine, and returns
// how many went per second.
func rawSendPooled(ctx context.Context, snk *sink, body sample, n, conns int) (float64, error) {
	clients := make([]*gomail.Client, conns)
	for i := range clients {
		c, err := smtpClientFor(snk.url())
		if err != nil {
			return 0, err
		}
		clients[i] = c
	}
	before := snk.count()
	start := time.Now()
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			if err := c.DialWithContext(ctx); err != nil {
				errs <- fmt.Errorf("raw send: dial: %w", err)
				return
			}
			defer c.Close()
			for j := i; j < n; j += conns {
				msg, err := body.message(fmt.Sprintf("raw-%d@example.com", j), randomHex(16))
				if err == nil {
					err = c.Send(msg)
				}
				if err != nil {
					errs <- fmt.Errorf("raw send: message %d: %w", j, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	if got := snk.count() - before; got != int64(n) {
		return 0, fmt.Errorf("raw send: the sink received %d of %d", got, n)
	}
	return float64(n) / elapsed.Seconds(), nil
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
