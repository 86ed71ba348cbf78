package purge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"signup/internal/hosted"
)

// Purger is the purger hosted service: it runs the purge on its schedule,
// once across all instances, and on demand (RunOnce).
type Purger struct {
	cfg   Config
	sched Schedule
	log   *slog.Logger
	svc   hosted.Service

	// failedRuns counts this instance's scheduled runs that failed in a
	// row; only the loop uses it.
	failedRuns int
}

// unhealthyAfter is how many scheduled runs in a row must fail for the
// purger to report itself Unhealthy: one failure may be a passing
// problem, and the next tick retries.
const unhealthyAfter = 2

var (
	_ hosted.Service = (*Purger)(nil)
	_ hosted.Failer  = (*Purger)(nil)
)

// New fills cfg's defaults, validates it and returns a Purger. It starts
// nothing: a host starts it, or RunOnce runs one pass.
func New(cfg Config) (*Purger, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sched, err := ParseSchedule(cfg.Schedule, cfg.Location)
	if err != nil {
		return nil, err
	}
	p := &Purger{cfg: cfg, sched: sched, log: cfg.Logger}
	p.svc = hosted.Background(p.loop)
	return p, nil
}

// Start starts the schedule. A run missed while no instance was up (the
// latest tick has no successful run, and the purge ran on this database
// before it) is caught up at once; a tick from before the first start is
// not a missed run.
func (p *Purger) Start(ctx context.Context) error { return p.svc.Start(ctx) }

// Stop stops the schedule, interrupting a run in progress between batches;
// the run is recorded as interrupted and the next one finishes its work.
func (p *Purger) Stop(ctx context.Context) error { return p.svc.Stop(ctx) }

// Failed implements hosted.Failer. A failed run is not a failure of the
// service (it is logged, recorded, and the next tick tries again); only a
// panic is.
func (p *Purger) Failed() <-chan error { return p.svc.(hosted.Failer).Failed() }

// NextRun returns when the next scheduled run is due, in the schedule's
// time zone, for the status page.
func (p *Purger) NextRun() time.Time { return p.sched.Next(p.cfg.Now()) }

// LastRuns returns the n most recent runs of any instance, newest first, for
// the status page.
func (p *Purger) LastRuns(ctx context.Context, n int) ([]Report, error) {
	runs, err := p.cfg.Store.LastRuns(ctx, n)
	for i := range runs {
		// So that Kind names the tick as the schedule does.
		if !runs[i].Scheduled.IsZero() {
			runs[i].Scheduled = runs[i].Scheduled.In(p.cfg.Location)
		}
	}
	return runs, err
}

// loop runs the schedule until ctx ends.
func (p *Purger) loop(ctx context.Context) error {
	// Catch up: the latest tick, if the purge ran on this database before
	// it and no run served it (runTick checks).
	tick := p.sched.Last(p.cfg.Now())
	if !tick.IsZero() {
		switch missed, err := p.missed(ctx, tick); {
		case err != nil:
			p.log.Warn("purge catch-up: cannot tell whether a run was missed; catching up", "tick", tick, "err", err)
			p.runTick(ctx, tick, caughtUp(tick))
		case missed:
			p.runTick(ctx, tick, caughtUp(tick))
		default:
			p.log.Info("purge: no run to catch up; the last tick came before the first start on this database",
				"tick", tick, "next", p.sched.Next(tick))
		}
	}
	for {
		from := tick
		if from.IsZero() {
			from = p.cfg.Now()
		}
		next := p.sched.Next(from)
		if next.IsZero() {
			p.log.Warn("purge schedule has no further tick", "schedule", p.cfg.Schedule)
			<-ctx.Done()
			return nil
		}
		if err := p.waitUntil(ctx, next); err != nil {
			return nil
		}
		// Ticks that passed while a run or the host was busy are served by
		// one run, for the latest.
		tick = p.sched.Last(p.cfg.Now())
		why := "scheduled"
		if p.cfg.Now().Sub(tick) > lateAfter {
			why = caughtUp(tick)
		}
		p.runTick(ctx, tick, why)
	}
}

// waitUntil returns once the clock reads t or later, or ctx's error.
func (p *Purger) waitUntil(ctx context.Context, t time.Time) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := t.Sub(p.cfg.Now())
		if d <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.cfg.After(min(d, maxWait)):
		}
	}
}

// runTick runs the purge for a schedule tick and logs the outcome and why
// it ran ("scheduled", or a catch-up); a failed run does not stop the
// schedule, but two in a row make the purger report itself Unhealthy to its
// host, until a run succeeds.
func (p *Purger) runTick(ctx context.Context, tick time.Time, why string) {
	rep, err := p.run(ctx, Options{}, tick)
	p.reportHealth(hosted.ReporterFrom(ctx), err)
	switch {
	case errors.Is(err, errTickDone):
		p.log.Debug("purge tick already served", "tick", tick)
	case errors.Is(err, ErrBusy):
		p.log.Info("purge tick skipped: another purge is running", "tick", tick)
	case errors.Is(err, ErrInterrupted):
		p.log.Warn("purge run interrupted", "tick", tick, "why", why, "run", rep.ID, "counts", rep.Counts)
	case err != nil:
		p.log.Error("purge run failed", "tick", tick, "why", why, "run", rep.ID, "counts", rep.Counts, "err", err)
	default:
		p.log.Info("purge run finished", "tick", tick, "why", why, "run", rep.ID, "counts", rep.Counts,
			"duration", rep.FinishedAt.Sub(rep.StartedAt), "rested_for_others", rep.Rested.Round(time.Millisecond))
	}
}

// reportHealth counts a scheduled run's outcome towards the purger's
// health: Unhealthy after unhealthyAfter failed runs in a row, Healthy
// again after a run that succeeds. Skipped and interrupted runs count for
// neither.
func (p *Purger) reportHealth(health *hosted.Reporter, err error) {
	switch {
	case errors.Is(err, errTickDone), errors.Is(err, ErrBusy), errors.Is(err, ErrInterrupted):
		return
	case err != nil:
		p.failedRuns++
		if p.failedRuns >= unhealthyAfter {
			health.Report(hosted.Unhealthy, fmt.Sprintf("the last %d purge runs failed", p.failedRuns))
		}
	default:
		p.failedRuns = 0
		health.Report(hosted.Healthy, "")
	}
}
