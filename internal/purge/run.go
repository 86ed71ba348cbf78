package purge

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Options shape a manual run.
type Options struct {
	// DryRun counts what the run would delete and warn, and changes
	// nothing: SELECTs with the predicates of the batches count the rows,
	// taking no row lock, so requests are never held up by a dry run. The
	// run is recorded, marked dry.
	DryRun bool
	// Force runs even when the safety limit would stop the run.
	Force bool
	// Max, when positive, caps the accounts the run deletes and warns
	// together; the rest wait for the next run. Without it a forced run
	// has no ceiling.
	Max int64
}

var (
	// ErrBusy means another purge (of any instance) holds the lock.
	ErrBusy = errors.New("purge: another purge is running")
	// ErrInterrupted means the run's context ended between batches; what
	// was done is committed and the next run does the rest.
	ErrInterrupted = errors.New("interrupted")
	// ErrSafetyLimit is matched by a *LimitError.
	ErrSafetyLimit = errors.New("purge: safety limit")

	// errTickDone means a run already served the tick.
	errTickDone = errors.New("purge: tick already served")
)

// LimitError is the safety limit stopping a run: it would have deleted or
// warned Affected of Total accounts, more than MaxShare of them and more
// than SafetyFloor.
type LimitError struct {
	Affected, Total int64
	MaxShare        float64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("safety limit: the run would delete or warn %d of %d accounts (%.1f%%), more than the maximum share of %.1f%%; nothing was deleted or warned (force the run to pass the limit, with --max to cap it)",
		e.Affected, e.Total, 100*float64(e.Affected)/float64(e.Total), 100*e.MaxShare)
}

// Is makes errors.Is(err, ErrSafetyLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrSafetyLimit }

// RunOnce runs one purge now, by the same code as a scheduled run, and
// records it as a manual run. It returns ErrBusy when another purge is
// running. A dry run that the safety limit would stop counts what a forced
// run would do, and returns the *LimitError with the report.
func (p *Purger) RunOnce(ctx context.Context, opts Options) (Report, error) {
	return p.run(ctx, opts, time.Time{})
}

// cutoffs computes the policy's moments from now.
func (p *Purger) cutoffs(now time.Time) Cutoffs {
	c := p.cfg
	return Cutoffs{
		Now:         now,
		Unconfirmed: now.Add(-c.UnconfirmedRetention),
		Warn:        now.Add(-(c.InactiveRetention - c.InactiveWarning)),
		Dormant:     now.Add(-c.InactiveWarning),
		Tokens:      now.Add(-c.TokenGrace),
		Outbox:      now.Add(-c.OutboxRetention),
	}
}

// run is one run, scheduled (tick set) or manual: under the lock, it checks
// the tick was not served, records the run, purges, and records the outcome.
func (p *Purger) run(ctx context.Context, opts Options, tick time.Time) (rep Report, err error) {
	if p.cfg.Observer != nil {
		// Deferred first, so it runs last: after a panic has been recorded.
		defer func() { p.cfg.Observer.Ran(outcomeOf(ctx, rep, err), rep) }()
	}
	s, ok, err := p.cfg.Store.Lock(ctx, LockOptions{StatementTimeout: p.cfg.StatementTimeout})
	if err != nil {
		return rep, fmt.Errorf("take purge lock: %w", err)
	}
	if !ok {
		return rep, ErrBusy
	}
	defer func() {
		if rerr := s.Release(context.WithoutCancel(ctx)); rerr != nil {
			p.log.Warn("release purge lock", "err", rerr)
		}
	}()
	if !tick.IsZero() {
		// Under the lock, so instances whose clocks differ a little still
		// serve each tick once.
		done, err := p.cfg.Store.TickDone(ctx, tick)
		if err != nil {
			return rep, fmt.Errorf("check purge tick: %w", err)
		}
		if done {
			return rep, errTickDone
		}
	}

	now := p.cfg.Now()
	rep = Report{Instance: p.cfg.Instance, Scheduled: tick, StartedAt: now, DryRun: opts.DryRun, Forced: opts.Force}
	if rep.ID, err = p.cfg.Store.StartRun(ctx, rep); err != nil {
		return rep, fmt.Errorf("record purge run: %w", err)
	}
	finished := false
	defer func() {
		if !finished { // a panic: record it on the way up
			rep.Error = "aborted by a panic"
			_ = p.finish(ctx, &rep) // the panic is what matters
		}
	}()
	err = p.purge(ctx, s, opts, p.cutoffs(now), &rep)
	finished = true
	if err != nil {
		rep.Error = err.Error()
	}
	return rep, errors.Join(err, p.finish(ctx, &rep))
}

// finish records the end of the run, even when ctx has ended.
func (p *Purger) finish(ctx context.Context, rep *Report) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.StatementTimeout)
	defer cancel()
	rep.FinishedAt = p.cfg.Now()
	if err := p.cfg.Store.FinishRun(ctx, *rep); err != nil {
		return fmt.Errorf("record end of purge run %d: %w", rep.ID, err)
	}
	return nil
}

// purge applies the policy in batches, adding to rep.Counts as it goes.
func (p *Purger) purge(ctx context.Context, s Session, opts Options, cut Cutoffs, rep *Report) error {
	cand, err := s.Candidates(ctx, cut)
	if err != nil {
		return p.batchErr(ctx, fmt.Errorf("count purge candidates: %w", err))
	}
	var limit error
	if n := cand.Affected(); n > SafetyFloor && float64(n) > p.cfg.MaxShare*float64(cand.Total) && !opts.Force {
		limit = &LimitError{Affected: n, Total: cand.Total, MaxShare: p.cfg.MaxShare}
		if !opts.DryRun {
			return limit
		}
		// A dry run goes on, to show what a forced run would do.
	}
	// left is what --max still allows of deletions and warnings; -1 is
	// no cap.
	left := int64(-1)
	if opts.Max > 0 {
		left = opts.Max
	}
	for _, c := range Categories {
		capped := left >= 0 && c.isAccounts()
		if opts.DryRun {
			n, err := s.Count(ctx, c, cut)
			if err != nil {
				return p.batchErr(ctx, err)
			}
			if capped {
				n = min(n, left)
				left -= n
			}
			rep.Counts.add(c, n)
			if p.cfg.AfterBatch != nil {
				p.cfg.AfterBatch(ctx, c)
			}
			continue
		}
		var from Cursor
		pace := &pacer{p: p, s: s}
		pace.start(ctx)
		for {
			size := p.cfg.BatchSize
			if capped {
				if left == 0 {
					break
				}
				size = int(min(int64(size), left))
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
			}
			began := time.Now() // the batch's cost, on the real clock whatever Now is
			b, err := s.Batch(ctx, c, cut, from, size)
			if err != nil {
				return p.batchErr(ctx, fmt.Errorf("purge %s: %w", c, err))
			}
			rep.Counts.add(c, b.N)
			if capped {
				left -= b.N
			}
			if p.cfg.AfterBatch != nil {
				p.cfg.AfterBatch(ctx, c)
			}
			if b.Done {
				break
			}
			from = b.Next
			rep.Rested += pace.rest(ctx, time.Since(began)) // see pace.go
		}
	}
	return limit
}

// batchErr reports a statement that failed because ctx ended as an
// interruption: its transaction rolled back, nothing is half done.
func (p *Purger) batchErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
	return err
}

// Outcome says how an attempt at a run ended, for Config.Observer.
type Outcome string

// The outcomes of a run.
const (
	// OutcomeSucceeded: the run finished without error.
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeFailed: the run failed, or stopped at the safety limit.
	OutcomeFailed Outcome = "failed"
	// OutcomeInterrupted: the run's context ended (between batches, or
	// before it could start).
	OutcomeInterrupted Outcome = "interrupted"
	// OutcomeBusy: another purge held the lock; nothing ran.
	OutcomeBusy Outcome = "busy"
	// OutcomeServed: a run (of any instance) had served the tick already;
	// nothing ran.
	OutcomeServed Outcome = "served"
)

// Observer hears of every attempt at a run, scheduled or manual, for
// metrics. Ran must not block.
type Observer interface {
	// Ran is called when an attempt ends, with its outcome and its report
	// (with no ID when nothing ran; counts of a dry run are what it would
	// have done).
	Ran(outcome Outcome, rep Report)
}

// outcomeOf classifies the end of a run. A run that failed because its
// context ended (the host is stopping) was interrupted, whatever step it
// was at.
func outcomeOf(ctx context.Context, rep Report, err error) Outcome {
	switch {
	case errors.Is(err, errTickDone):
		return OutcomeServed
	case errors.Is(err, ErrBusy):
		return OutcomeBusy
	case errors.Is(err, ErrInterrupted), err != nil && ctx.Err() != nil:
		return OutcomeInterrupted
	case err != nil, rep.Error != "":
		return OutcomeFailed
	}
	return OutcomeSucceeded
}
