package purge

import (
	"context"
	"time"
)

// The purge paces itself by what its batches cost: after each batch it
// rests for a share of the time that batch took, so that it works at most
// batchDutyCycle of the time whatever the machine's speed. While it rests,
// the WAL its batches wrote is flushed and other transactions' commits no
// longer wait behind it (a signup's commit fsync otherwise waits for all
// the purge WAL written before it). A batch slowed by other load earns a
// longer rest, so the purge yields most when the database is busiest. The
// whole purge takes 1/batchDutyCycle of its working time: 4/3, which keeps
// it within twice a single DELETE of the same rows (its batches alone take
// about 1.27 times that on an idle machine, more on a busy one).
const batchDutyCycle = 3.0 / 4

// restAfter is how long to rest after a batch that took took: the
// configured Pause, or the duty cycle's share of took if longer.
func (p *Purger) restAfter(took time.Duration) time.Duration {
	paced := time.Duration(float64(took) * (1 - batchDutyCycle) / batchDutyCycle)
	return max(p.cfg.Pause, paced)
}

// rest waits restAfter(took), or until ctx ends.
func (p *Purger) rest(ctx context.Context, took time.Duration) {
	d := p.restAfter(took)
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-p.cfg.After(d):
	}
}
