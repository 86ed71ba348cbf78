package purge

import (
	"context"
	"fmt"
	"time"
)

// lateAfter is how long after its tick a scheduled run may start and still
// be on time. A run on schedule starts within moments of its tick; one that
// starts later was caught up: at start, for a tick missed while no
// instance was up, or after a run that outlasted the next tick.
const lateAfter = time.Minute

// historyShown is how many recorded runs tell whether the database has a
// history from before a tick.
const historyShown = 10

// missed reports whether tick, the latest tick before this start, was
// missed: whether the purge ran on this database before it. The run records
// are the only trace a start leaves, so a tick older than every recorded
// run came before the first start (a fresh database at 04:57 did not miss
// the 03:00 run: there was nothing to run it) and is not caught up.
func (p *Purger) missed(ctx context.Context, tick time.Time) (bool, error) {
	runs, err := p.cfg.Store.LastRuns(ctx, historyShown)
	if err != nil {
		return false, fmt.Errorf("read purge history: %w", err)
	}
	if len(runs) == historyShown {
		return true, nil
	}
	for _, r := range runs {
		if r.StartedAt.Before(tick) {
			return true, nil
		}
	}
	return false, nil
}

// caughtUp describes a catch-up of tick, for the log and the run's record.
func caughtUp(tick time.Time) string {
	return fmt.Sprintf("caught up: the %s run was missed", tick.Format("15:04"))
}

// Kind describes the run for people: "manual", "dry run", "scheduled", or
// "caught up: the 03:00 run was missed" for a scheduled run that started
// well after its tick. Times are read in Scheduled's location (LastRuns
// gives them in the schedule's zone).
func (r Report) Kind() string {
	switch {
	case r.DryRun:
		return "dry run"
	case r.Scheduled.IsZero():
		return "manual"
	case r.StartedAt.Sub(r.Scheduled) > lateAfter:
		return caughtUp(r.Scheduled)
	}
	return "scheduled"
}
