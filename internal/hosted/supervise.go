package hosted

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// watch starts watching a started unit for failures, if it can report any.
func (h *Host) watch(runCtx context.Context, u *unit, failed <-chan error) {
	u.quit = make(chan struct{})
	u.exited = make(chan struct{})
	if failed == nil {
		close(u.exited)
		return
	}
	go h.supervise(runCtx, u, failed)
}

// unwatch stops watching u and waits for its watcher to return. That is
// prompt: whatever the watcher waits on ends with runCtx, which is cancelled
// before stopping begins.
func (h *Host) unwatch(u *unit) {
	close(u.quit)
	<-u.exited
}

// supervise receives u's failures and applies its policy until unwatched.
func (h *Host) supervise(runCtx context.Context, u *unit, failed <-chan error) {
	defer close(u.exited)
	for {
		select {
		case <-u.quit:
			return
		case err, ok := <-failed:
			if !ok {
				h.setState(u, StatusStopped, nil)
				h.log.LogAttrs(context.Background(), slog.LevelInfo, "service finished", slog.String("service", u.name))
				failed = nil
				continue
			}
			failed = h.handleFailure(runCtx, u, failed, err)
		}
	}
}

// handleFailure applies u's policy to a failure received on failed, and
// returns the channel to watch next (nil for none).
func (h *Host) handleFailure(runCtx context.Context, u *unit, failed <-chan error, err error) <-chan error {
	if err == nil {
		err = errors.New("failed without an error")
	}
	ran := time.Since(h.state(u).StartedAt)
	h.setState(u, StatusFailed, func(s *State) { s.LastError = err })
	h.logError("service failed", u, err, slog.Duration("ran", ran), slog.String("policy", u.policy.String()))

	switch u.policy {
	case Ignore:
		return failed
	case Restart:
		if runCtx.Err() != nil {
			return nil // the host is stopping: nothing to restart for
		}
		if ran >= u.backoff.max {
			u.attempt = 0 // it ran well for a while: start the backoff over
		}
		return h.restart(runCtx, u, err)
	default:
		h.fail(fmt.Errorf("service %s failed: %w", u.name, err))
		return nil
	}
}

// restart restarts u after a backoff, again and again, until a start
// succeeds, the host stops, or MaxRestarts is exceeded (which stops the
// host). It returns the channel to watch next.
func (h *Host) restart(runCtx context.Context, u *unit, cause error) <-chan error {
	for {
		restarts := h.state(u).Restarts
		if u.maxRestarts > 0 && restarts >= u.maxRestarts {
			err := fmt.Errorf("service %s failed after %d restarts: %w", u.name, restarts, cause)
			h.logError("service restart limit reached", u, cause, slog.Int("restarts", restarts))
			h.fail(err)
			return nil
		}

		// Release what is left of the failed run before waiting; Stop must
		// be safe after a failure.
		ctx, cancel := context.WithTimeout(runCtx, u.startTimeout)
		_, err := invoke(ctx, ctx, u.svc.Stop)
		cancel()
		if err != nil && runCtx.Err() == nil {
			h.logError("service failed to stop before restart", u, err)
		}

		delay := u.backoff.delay(u.attempt)
		u.attempt++
		h.setState(u, StatusRestarting, func(s *State) { s.Restarts++ })
		h.log.LogAttrs(context.Background(), slog.LevelWarn, "service restarting",
			slog.String("service", u.name), slog.Int("restart", restarts+1),
			slog.Duration("delay", delay), slog.Any("error", cause))
		timer := time.NewTimer(delay)
		select {
		case <-runCtx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}

		failed, err := h.start(runCtx, u)
		if err == nil {
			return failed
		}
		if errors.Is(err, errInterrupted) {
			return nil
		}
		cause = err
	}
}
