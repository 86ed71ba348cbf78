package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	gomail "github.com/wneessen/go-mail"
)

// River's settings in the drain row, chosen by trying each once in a
// -runs 1 session of this row (20,000 jobs, four pooled connections, the
// lean sink) on the shared 2-core bench machine and keeping River's best:
//
//	MaxWorkers  FetchCooldown  River emails/s  ours emails/s (same round)
//	        16           1 ms             872         1483
//	        64           1 ms            1094          940
//	       128           1 ms             888         1292
//	        64           5 ms             836         1279
//	       128           3 ms             997         1368
//
// The machine was busy with other work (ours moved from 940 to 1483
// between rounds), so the choice is rough; all are far faster than
// River's default FetchCooldown (100 ms) for a backlog.
var (
	riverMaxWorkers    = 64
	riverFetchCooldown = time.Millisecond
)

// confirmArgs is River's job for one confirmation email.
type confirmArgs struct {
	AccountID int64  `json:"account_id"`
	Email     string `json:"email"`
}

func (confirmArgs) Kind() string { return "confirm_email" }

// confirmWorker sends the sample message with a fresh token over one of a
// fixed set of go-mail connections, reused.
type confirmWorker struct {
	river.WorkerDefaults[confirmArgs]
	body  sample
	conns chan *gomail.Client
}

func (w *confirmWorker) Work(ctx context.Context, job *river.Job[confirmArgs]) error {
	msg, err := w.body.message(job.Args.Email, randomHex(16))
	if err != nil {
		return err
	}
	var c *gomail.Client
	select {
	case c = <-w.conns:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { w.conns <- c }()
	return c.Send(msg)
}

// riverResult is one River drain.
type riverResult struct {
	perSecond float64
	pgCPU     time.Duration // PostgreSQL backends' CPU during the drain
}

// riverDrain drains n confirmation jobs with River into snk, from a
// database of its own migrated by rivermigrate, over conns go-mail
// connections.
func riverDrain(ctx context.Context, h *harness, snk *sink, body sample, n, conns, maxWorkers int, cooldown time.Duration) (res riverResult, err error) {
	name, err := h.createDatabase(ctx, "")
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, h.dropDatabase(name)) }()
	pool, err := pgxpool.New(ctx, h.url(name))
	if err != nil {
		return res, fmt.Errorf("river: %w", err)
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return res, fmt.Errorf("river: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return res, fmt.Errorf("river: migrate: %w", err)
	}

	w := &confirmWorker{body: body, conns: make(chan *gomail.Client, conns)}
	for range conns {
		c, err := smtpClientFor(snk.url())
		if err != nil {
			return res, err
		}
		if err := c.DialWithContext(ctx); err != nil {
			return res, fmt.Errorf("river: dial: %w", err)
		}
		defer c.Close()
		w.conns <- c
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client, err := river.NewClient(driver, &river.Config{
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: maxWorkers}},
		Workers:       workers,
		FetchCooldown: cooldown,
		Logger:        discardLogger(),
	})
	if err != nil {
		return res, fmt.Errorf("river: %w", err)
	}
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: confirmArgs{AccountID: int64(i + 1), Email: fmt.Sprintf("river-%d@example.com", i)}}
	}
	for len(params) > 0 {
		chunk := params[:min(len(params), 5000)]
		if _, err := client.InsertManyFast(ctx, chunk); err != nil {
			return res, fmt.Errorf("river: insert jobs: %w", err)
		}
		params = params[len(chunk):]
	}
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		return res, fmt.Errorf("river: %w", err)
	}

	before := snk.count()
	cpu0, err := backendCPU(ctx, h, name)
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return res, fmt.Errorf("river: start: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = client.Stop(stopCtx)
	}()
	if err := snk.wait(ctx, before+int64(n)); err != nil {
		return res, fmt.Errorf("river: %w", err)
	}
	res.perSecond = float64(n) / time.Since(start).Seconds()
	cpu1, err := backendCPU(ctx, h, name)
	if err != nil {
		return res, err
	}
	res.pgCPU = cpu1.since(cpu0)
	return res, nil
}
