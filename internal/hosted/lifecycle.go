package hosted

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// errInterrupted marks a Start cut short because the host began stopping.
var errInterrupted = errors.New("interrupted: host stopping")

// timeoutError reports a Start or Stop that overran its deadline.
type timeoutError struct {
	limit string // the deadline that ran out, such as "start timeout 15s"
}

func (e *timeoutError) Error() string { return "deadline exceeded (" + e.limit + ")" }

func (e *timeoutError) Unwrap() error { return context.DeadlineExceeded }

// start starts u under its start timeout. On success it returns the channel
// u reports failures on, nil if it cannot fail. It returns an error wrapping
// errInterrupted if runCtx ended first.
func (h *Host) start(runCtx context.Context, u *unit) (<-chan error, error) {
	h.setState(u, StatusStarting, func(*State) { u.resetHealth(time.Now()) })
	h.log.LogAttrs(context.Background(), slog.LevelInfo, "service starting", slog.String("service", u.name))
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.WithValue(runCtx, reporterKey{}, &Reporter{h: h, u: u}), u.startTimeout)
	defer cancel()
	done, err := invoke(ctx, ctx, u.svc.Start)
	took := time.Since(t0)

	switch {
	case err == nil:
	case runCtx.Err() != nil:
		h.setState(u, StatusStopped, nil)
		h.log.LogAttrs(context.Background(), slog.LevelInfo, "service start interrupted",
			slog.String("service", u.name), slog.Duration("duration", took))
		return nil, fmt.Errorf("start %s: %w", u.name, errInterrupted)
	case !done || ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("start %s: %w", u.name, &timeoutError{limit: fmt.Sprintf("start timeout %v", u.startTimeout)})
	default:
		err = fmt.Errorf("start %s: %w", u.name, err)
	}
	if err != nil {
		h.setState(u, StatusFailed, func(s *State) { s.LastError = err })
		h.logError("service failed to start", u, err, slog.Duration("duration", took))
		return nil, err
	}

	h.setState(u, StatusRunning, func(s *State) { s.StartedAt = time.Now() })
	h.log.LogAttrs(context.Background(), slog.LevelInfo, "service started",
		slog.String("service", u.name), slog.Duration("duration", took))
	if f, ok := u.svc.(Failer); ok {
		return f.Failed(), nil
	}
	return nil, nil
}

// hardStopKey carries, in the context Stop gets, the channel closed at the
// service's hard limit, for Background's Stop.
type hardStopKey struct{}

// stop stops u: its Stop gets a context that ends at the soft deadline, and
// is waited for until the hard limit.
func (h *Host) stop(base context.Context, soft, hard time.Time, u *unit) error {
	// A failed service is still stopped, to release what it holds, but it
	// keeps its failed status for the record.
	failed := h.state(u).Status == StatusFailed
	if !failed {
		h.setState(u, StatusStopping, nil)
	}
	h.log.LogAttrs(context.Background(), slog.LevelInfo, "service stopping", slog.String("service", u.name),
		slog.Duration("soft", time.Until(soft).Round(time.Millisecond)), slog.Duration("hard", time.Until(hard).Round(time.Millisecond)))
	wait, cancelWait := context.WithDeadline(base, hard)
	defer cancelWait()
	ctx, cancel := context.WithDeadline(context.WithValue(base, hardStopKey{}, wait.Done()), soft)
	defer cancel()
	t0 := time.Now()
	done, err := invoke(ctx, wait, u.svc.Stop)
	took := time.Since(t0)
	hardStop := done && ctx.Err() != nil
	h.setState(u, h.state(u).Status, func(s *State) { s.HardStop = hardStop })
	if hardStop {
		h.log.LogAttrs(context.Background(), slog.LevelWarn, "service needed the hard stop",
			slog.String("service", u.name), slog.Duration("duration", took))
	}

	switch {
	case err == nil:
	case !done || wait.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("stop %s: %w", u.name, &timeoutError{limit: fmt.Sprintf("shutdown budget %v", h.shutdownTimeout)})
	default:
		err = fmt.Errorf("stop %s: %w", u.name, err)
	}
	if err != nil {
		h.setState(u, StatusFailed, func(s *State) { s.LastError = err })
		h.logError("service failed to stop", u, err, slog.Duration("duration", took))
		return err
	}
	if !failed {
		h.setState(u, StatusStopped, nil)
	}
	h.log.LogAttrs(context.Background(), slog.LevelInfo, "service stopped",
		slog.String("service", u.name), slog.Duration("duration", took))
	return nil
}

// logError logs err for u at error level, with the stack if err is a panic.
func (h *Host) logError(msg string, u *unit, err error, attrs ...slog.Attr) {
	attrs = append([]slog.Attr{slog.String("service", u.name), slog.Any("error", err)}, attrs...)
	if pe, ok := errors.AsType[*PanicError](err); ok {
		attrs = append(attrs, slog.String("stack", string(pe.Stack)))
	}
	h.log.LogAttrs(context.Background(), slog.LevelError, msg, attrs...)
}
