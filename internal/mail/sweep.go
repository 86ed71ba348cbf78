package mail

import (
	"context"
	"time"

	"signup/internal/store"
)

// sweptRow is an outbox row the sweep took (leased, an attempt counted),
// carried by its Job so the worker need not claim it again: one write
// fewer per email.
type sweptRow struct {
	m          store.OutboxMail
	leaseUntil time.Time
	// lockEpoch is the count of instance-lock losses at the sweep: a row
	// swept before a loss may have been taken by another instance
	// meanwhile, and is claimed again before it is sent.
	lockEpoch uint64
}

// sweepLoop sweeps at once, then every SweepEvery, and when a draining
// backlog, a due retry or the end of a block asks for more. Periodic sweeps
// also look for rows of dead instances (which reads pg_locks); the others
// only for due rows and expired leases.
func (s *Sender) sweepLoop(ctx context.Context, r *run) {
	defer close(r.sweepDone)
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	periodic := true
	for {
		s.sweep(ctx, r, periodic)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			periodic = true
		case <-r.kick:
			periodic = false
		}
	}
}

// sweep leases as many due rows as the queue has room for (at most
// SweepBatch) and queues them. It takes nothing while the sender is
// blocked or the instance lock is lost.
func (s *Sender) sweep(ctx context.Context, r *run, checkHolders bool) {
	if r.lockLost.Load() {
		// Rows leased now would look abandoned to the other instances at
		// once; let them have the due rows until the lock is back.
		return
	}
	open, _ := s.gate.opened()
	select {
	case <-open:
	default:
		return
	}
	// Swept rows wait in the queue on their lease: keep at most about two
	// sweeps' worth queued (the workers kick the next sweep at half a
	// batch), however often the periodic sweep comes.
	q := s.cfg.Queue
	room := min(q.Cap()-q.Len(), s.cfg.SweepBatch)
	if room <= 0 || q.Len() >= s.cfg.SweepBatch {
		r.backlog.Store(true)
		return
	}
	now := s.cfg.Now()
	until := now.Add(s.cfg.Lease)
	epoch := r.lockEpoch.Load()
	ms, err := s.cfg.Outbox.Lease(ctx, s.cfg.Instance, now, until, room, checkHolders)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("mail: sweep failed", "err", err)
		}
		return
	}
	r.backlog.Store(len(ms) == room)
	var back []int64
	for _, m := range ms {
		job := NewJob(m.ID)
		job.swept = &sweptRow{m: m, leaseUntil: until, lockEpoch: epoch}
		if !q.TryEnqueue(job) {
			back = append(back, m.ID)
		}
	}
	if len(back) > 0 {
		// The signup handlers filled the queue meanwhile.
		if _, err := s.cfg.Outbox.Release(ctx, s.cfg.Instance, back, now); err != nil && ctx.Err() == nil {
			s.log.Warn("mail: give back swept rows", "rows", len(back), "err", err)
		}
	}
	if len(ms) > 0 {
		s.log.Debug("mail: swept outbox", "leased", len(ms), "queued", len(ms)-len(back))
	}
}

// maybeKick asks for a sweep when a backlog is waiting and the queue is
// down to half a batch.
func (s *Sender) maybeKick(r *run) {
	if r.backlog.Load() && s.cfg.Queue.Len() <= s.cfg.SweepBatch/2 {
		r.kickSweep()
	}
}

// kickSweep asks for a sweep now.
func (r *run) kickSweep() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
