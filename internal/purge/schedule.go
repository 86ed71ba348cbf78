package purge

import (
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is when runs are due: a standard cron expression or descriptor
// read in a time zone.
//
// Ticks are absolute moments every instance computes alike, which is what
// lets purge_runs.scheduled say that a tick was served. A cron expression
// ticks at its wall-clock times in the zone (CRON_TZ= in the expression wins
// over it). "@every d" ticks at whole multiples of d counted from
// 0001-01-01 UTC, so "@every 10m" runs at :00, :10, :20 … and "@every 24h"
// at midnight UTC, wherever and whenever an instance started (robfig/cron's
// own ConstantDelaySchedule counts from the moment it is asked, which two
// instances would not agree on).
type Schedule struct {
	spec  cron.Schedule
	every time.Duration
	loc   *time.Location
}

// ParseSchedule parses expr with cron.ParseStandard, to be read in loc (UTC
// when nil).
func ParseSchedule(expr string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return Schedule{}, fmt.Errorf("parse schedule %q: %w", expr, err)
	}
	s := Schedule{spec: sched, loc: loc}
	if d, ok := sched.(cron.ConstantDelaySchedule); ok {
		s.every = d.Delay
	}
	if s.Next(time.Now()).IsZero() {
		return Schedule{}, fmt.Errorf("parse schedule %q: %w", expr, errNeverDue)
	}
	return s, nil
}

var errNeverDue = errors.New("never due")

// Next returns the first tick strictly after t, in the schedule's zone, or
// the zero time if there is none within five years.
func (s Schedule) Next(t time.Time) time.Time {
	t = t.In(s.loc)
	if s.every > 0 {
		return t.Truncate(s.every).Add(s.every)
	}
	return s.spec.Next(t)
}

// lookBack are the windows Last searches, each a little longer than the
// period of a common schedule, up to robfig/cron's own five-year horizon.
var lookBack = []time.Duration{
	time.Minute + time.Second,
	time.Hour + time.Second,
	25 * time.Hour,
	8 * 24 * time.Hour,
	32 * 24 * time.Hour,
	367 * 24 * time.Hour,
	5 * 366 * 24 * time.Hour,
}

// Last returns the latest tick at or before t, or the zero time if there is
// none within five years. cron has no "previous": Last finds the smallest
// window before t that holds a tick, then walks forward through it.
func (s Schedule) Last(t time.Time) time.Time {
	t = t.In(s.loc)
	if s.every > 0 {
		return t.Truncate(s.every)
	}
	for _, w := range lookBack {
		tick := s.spec.Next(t.Add(-w))
		if tick.IsZero() || tick.After(t) {
			continue
		}
		for {
			next := s.spec.Next(tick)
			if next.IsZero() || next.After(t) {
				return tick
			}
			tick = next
		}
	}
	return time.Time{}
}
