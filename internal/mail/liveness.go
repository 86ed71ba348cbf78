package mail

import (
	"context"
	"fmt"
	"time"

	"signup/internal/store"
)

// Holding the instance lock. See "Crashes" in the package documentation.
const (
	// lockCheckEvery is how long the lock's connection may stay silent
	// before it is pinged, to notice one that broke without a word (a
	// server that ends the session or a connection reset is noticed at
	// once).
	lockCheckEvery = 10 * time.Second
	// relockMin and relockMax bound the backoff between attempts to take a
	// lost lock again: quick after a killed session, patient while the
	// database restarts.
	relockMin = 100 * time.Millisecond
	relockMax = 5 * time.Second
	// lockTimeout bounds one attempt to take the lock, and giving it up.
	lockTimeout = 10 * time.Second
)

// lockInstance takes the instance lock at Start, then gives back rows still
// leased under this instance id: a process can only find such rows when an
// earlier one with the same id died (a pid reused after a container
// restart), and now that this process holds the lock they would look alive
// to everyone until their lease ran out. When another live session holds
// the same lock, they may be that process's work in progress: they are
// left alone.
func (s *Sender) lockInstance(ctx context.Context) (*store.InstanceLock, error) {
	lock, err := s.cfg.Outbox.LockInstance(ctx, s.cfg.Instance)
	if err != nil {
		return nil, fmt.Errorf("take the instance lock: %w", err)
	}
	if n := lock.Others(); n > 0 {
		s.log.Warn("mail: another live session holds this instance's lock: a second process with the same instance id, or one whose id hashes alike; if either is killed, its rows wait for their lease to expire",
			"instance", s.cfg.Instance, "sessions", n)
		return lock, nil
	}
	n, err := s.cfg.Outbox.Release(ctx, s.cfg.Instance, nil, s.cfg.Now())
	if err != nil {
		s.releaseLock(lock)
		return nil, fmt.Errorf("give back rows an earlier process with this instance id left leased: %w", err)
	}
	if n > 0 {
		s.log.Info("mail: gave back rows an earlier process with this instance id left leased", "rows", n)
	}
	return lock, nil
}

// holdLock keeps the instance lock until ctx ends, then gives it up. When
// the lock's session is lost (the database restarted, the connection
// broke) it takes the lock again on a new connection, with backoff.
// Meanwhile this instance's rows look abandoned: other instances may take
// them, and a message this one is sending may be sent twice.
func (s *Sender) holdLock(ctx context.Context, r *run, lock *store.InstanceLock) {
	defer close(r.lockDone)
	for {
		err := lock.Wait(ctx, lockCheckEvery)
		s.releaseLock(lock)
		if ctx.Err() != nil {
			return
		}
		lost := time.Now()
		r.lockEpoch.Add(1)
		r.lockLost.Store(true)
		s.log.Warn("mail: instance lock lost; until it is back, other instances may take the rows this one holds, and send some twice",
			"instance", s.cfg.Instance, "err", err)
		if lock = s.relock(ctx); lock == nil {
			return
		}
		r.lockLost.Store(false)
		s.log.Info("mail: instance lock taken again", "instance", s.cfg.Instance, "after", time.Since(lost).Round(time.Millisecond))
	}
}

// relock takes the instance lock again, retrying with capped backoff; nil
// when ctx ends first.
func (s *Sender) relock(ctx context.Context) *store.InstanceLock {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, lockTimeout)
		lock, err := s.cfg.Outbox.LockInstance(actx, s.cfg.Instance)
		cancel()
		if err == nil {
			return lock
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := retryDelay(attempt, relockMin, relockMax)
		s.log.Warn("mail: take the instance lock again", "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// releaseLock gives the lock up and closes its connection.
func (s *Sender) releaseLock(lock *store.InstanceLock) {
	ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
	defer cancel()
	if err := lock.Release(ctx); err != nil {
		s.log.Warn("mail: give up the instance lock; it goes with the connection", "err", err)
	}
}
