package purge

import (
	"context"
	"time"
)

// The purge paces itself by what it costs others. After each batch it
// asks the database whether other clients ran statements while the batch
// ran (Session.Others). When none has for busyHold, nobody waits behind it
// and it goes straight on, as fast as batches go. While some do, it rests
// after each batch for as long as that batch took, so that it works at
// most batchDutyCycle of the time while others work: as it rests, the WAL
// its batches wrote is flushed and the disk is theirs, and the others'
// commits no longer wait behind it (a signup's commit fsync otherwise
// waits for all the purge WAL written before it); a batch slowed by other
// load earns a longer rest, so the purge yields most when the database is
// busiest. Alone, it pays nothing for this.
const batchDutyCycle = 1.0 / 2

// busyHold is how long the database counts as busy after others were
// last seen at work: their statements come and go between batches, and a
// batch that happened to fall between two of them is no sign they left.
const busyHold = time.Second

// restAfter is how long to rest after a batch that took took, busy
// telling whether others are at work: the duty cycle's share of took if
// so, else nothing; the configured Pause is the floor either way.
func (p *Purger) restAfter(took time.Duration, busy bool) time.Duration {
	var paced time.Duration
	if busy {
		paced = time.Duration(float64(took) * (1 - batchDutyCycle) / batchDutyCycle)
	}
	return max(p.cfg.Pause, paced)
}

// pacer remembers, between batches, from when to look for others' work.
type pacer struct {
	p     *Purger
	s     Session
	since time.Time // the database's clock at the last look; zero before
	// seen is when others were last found at work (real clock); zero if
	// never.
	seen time.Time
}

// start looks at the database's clock before the first batch: what others
// did before it is not the purge's cost.
func (pc *pacer) start(ctx context.Context) {
	if _, now, err := pc.s.Others(ctx, pc.since); err == nil {
		pc.since = now
	}
}

// busy reports whether other clients started statements since the last
// look, or within busyHold. When the database cannot say, it counts as
// busy: resting is the polite guess.
func (pc *pacer) busy(ctx context.Context) bool {
	n, now, err := pc.s.Others(ctx, pc.since)
	if err != nil {
		return true
	}
	pc.since = now
	if n > 0 {
		pc.seen = time.Now()
	}
	return !pc.seen.IsZero() && time.Since(pc.seen) < busyHold
}

// rest waits after a batch that took took, as restAfter says, or until
// ctx ends, and returns how long it rested. It waits on the real clock,
// as the batch's cost was measured on it, whatever Config.Now is.
func (pc *pacer) rest(ctx context.Context, took time.Duration) time.Duration {
	d := pc.p.restAfter(took, pc.busy(ctx))
	if d <= 0 {
		return 0
	}
	began := time.Now()
	t := time.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
	case <-t.C:
	}
	pc.busy(ctx) // what others did during the rest was not our cost
	return time.Since(began)
}
