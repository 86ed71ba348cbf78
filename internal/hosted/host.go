package hosted

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults for the zero values of [Config] and [Options].
const (
	DefaultStartTimeout    = 15 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultBackoffMin      = 100 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
)

// Config configures a [Host]. The zero value is ready to use.
type Config struct {
	// StartTimeout bounds each service's Start unless its Options set one.
	// Zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// ShutdownTimeout is one budget for stopping all services, like
	// HostOptions.ShutdownTimeout. A service whose Stop overruns it is
	// reported; the services after it are still stopped, with an expired
	// context, and together get a grace of a tenth of the budget (at most a
	// second) to return. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives lifecycle events. Nil discards them.
	Logger *slog.Logger
}

// Options configure one service, as passed to [Host.Add]. The zero value
// stops the host on failure and uses the host's start timeout.
type Options struct {
	// Policy says what happens when the service fails after it started.
	Policy Policy
	// StartTimeout bounds Start. Zero means the host's StartTimeout.
	StartTimeout time.Duration
	// MaxRestarts caps restarts under the Restart policy, counted over the
	// whole Run (State.Restarts); the failure after the last allowed restart
	// escalates to StopHost. Zero means unlimited.
	MaxRestarts int
	// BackoffMin is the first restart delay under the Restart policy; each
	// further restart doubles it. Zero means DefaultBackoffMin.
	BackoffMin time.Duration
	// BackoffMax caps the restart delay. Zero means DefaultBackoffMax, or
	// BackoffMin if that is larger. The backoff starts over once a run of the
	// service has lasted BackoffMax.
	BackoffMax time.Duration
}

// Host runs services: it starts them in the order they were added, watches
// them for failures and stops them in reverse order. Create one with [New],
// add services with [Host.Add], then call [Host.Run] once.
type Host struct {
	startTimeout    time.Duration
	shutdownTimeout time.Duration
	log             *slog.Logger

	// stopCtx is cancelled by Stop or a fatal failure; its cause says which.
	stopCtx     context.Context
	requestStop context.CancelCauseFunc

	started, stopping, stopped chan struct{}

	mu       sync.Mutex
	units    []*unit
	names    map[string]bool
	ran      bool
	failures []error // fatal failures, for Run's error
}

// unit is a service with its options and state.
type unit struct {
	name         string
	svc          Service
	policy       Policy
	startTimeout time.Duration
	maxRestarts  int
	backoff      backoff

	state State // guarded by Host.mu

	// Owned by Run and the unit's watcher.
	quit    chan struct{} // closed when the host stops watching the unit
	exited  chan struct{} // closed when the watcher has returned
	attempt int           // backoff exponent, used by the watcher only
}

// errStopCalled is the stop cause when Host.Stop was called.
var errStopCalled = errors.New("Stop called")

// New returns a Host configured by cfg. It panics if a duration is negative.
func New(cfg Config) *Host {
	if cfg.StartTimeout < 0 || cfg.ShutdownTimeout < 0 {
		panic("hosted: negative timeout in Config")
	}
	h := &Host{
		startTimeout:    orDefault(cfg.StartTimeout, DefaultStartTimeout),
		shutdownTimeout: orDefault(cfg.ShutdownTimeout, DefaultShutdownTimeout),
		log:             cfg.Logger,
		started:         make(chan struct{}),
		stopping:        make(chan struct{}),
		stopped:         make(chan struct{}),
		names:           make(map[string]bool),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.stopCtx, h.requestStop = context.WithCancelCause(context.Background())
	return h
}

// orDefault returns d, or def if d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Add registers a service under a unique name. Services start in the order
// they are added and stop in reverse. Add panics if Run has been called, if
// the name is empty or taken, if s is nil, or if opts are invalid.
func (h *Host) Add(name string, s Service, opts Options) {
	switch {
	case name == "":
		panic("hosted: Add with an empty name")
	case s == nil:
		panic(fmt.Sprintf("hosted: Add %q with a nil Service", name))
	case opts.Policy < StopHost || opts.Policy > Ignore:
		panic(fmt.Sprintf("hosted: Add %q with unknown %v", name, opts.Policy))
	case opts.StartTimeout < 0 || opts.MaxRestarts < 0 || opts.BackoffMin < 0 || opts.BackoffMax < 0:
		panic(fmt.Sprintf("hosted: Add %q with negative Options", name))
	}
	b := backoff{min: orDefault(opts.BackoffMin, DefaultBackoffMin), max: opts.BackoffMax}
	if b.max == 0 {
		b.max = max(DefaultBackoffMax, b.min)
	}
	if b.min > b.max {
		panic(fmt.Sprintf("hosted: Add %q with BackoffMin > BackoffMax", name))
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ran {
		panic(fmt.Sprintf("hosted: Add %q after Run", name))
	}
	if h.names[name] {
		panic(fmt.Sprintf("hosted: Add %q: name already added", name))
	}
	h.names[name] = true
	h.units = append(h.units, &unit{
		name:         name,
		svc:          s,
		policy:       opts.Policy,
		startTimeout: orDefault(opts.StartTimeout, h.startTimeout),
		maxRestarts:  opts.MaxRestarts,
		backoff:      b,
		state:        State{Name: name, Policy: opts.Policy, Status: StatusPending, Since: time.Now()},
	})
}

// Run starts the services in order, each under its start timeout. If one
// fails to start, the ones started are stopped in reverse and Run returns the
// error. Otherwise Run blocks until ctx is done, [Host.Stop] is called or a
// service fails under the StopHost policy, then stops all services in reverse
// under the shutdown budget. It returns the failure and the stop errors
// joined, or nil if the host was asked to stop and every service stopped
// cleanly. Run may be called only once; no goroutine of the host outlives it,
// except a Start or Stop that ignored its context and overran its deadline.
func (h *Host) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.ran {
		h.mu.Unlock()
		return errors.New("hosted: Run called more than once")
	}
	h.ran = true
	units := h.units
	h.mu.Unlock()
	defer close(h.stopped)

	// runCtx ends when stopping begins; it bounds starts and restarts.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(h.stopCtx, func() { cancel(context.Cause(h.stopCtx)) })()

	n, startErr := h.startAll(runCtx, units)
	if n == len(units) && startErr == nil && h.stopCause(ctx) == nil {
		close(h.started)
		h.log.Info("host started", slog.Int("services", n))
		select {
		case <-ctx.Done():
		case <-h.stopCtx.Done():
		}
	}

	close(h.stopping)
	reason := h.stopCause(ctx)
	if startErr != nil {
		reason = startErr
	}
	cancel(reason)
	h.log.Info("host stopping", slog.Any("reason", reason))
	t0 := time.Now()
	stopErr := h.stopAll(ctx, units[:n])
	h.log.Info("host stopped", slog.Duration("duration", time.Since(t0)))

	h.mu.Lock()
	errs := append([]error{startErr}, h.failures...)
	h.mu.Unlock()
	return errors.Join(append(errs, stopErr)...)
}

// stopCause returns why the host should stop, or nil if nothing asked it to.
func (h *Host) stopCause(ctx context.Context) error {
	if h.stopCtx.Err() != nil {
		return context.Cause(h.stopCtx)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// startAll starts units in order until one fails or the host is asked to
// stop. It returns the start error, if any, and how many units started.
func (h *Host) startAll(runCtx context.Context, units []*unit) (int, error) {
	for i, u := range units {
		if runCtx.Err() != nil || h.stopCtx.Err() != nil {
			return i, nil
		}
		failed, err := h.start(runCtx, u)
		if errors.Is(err, errInterrupted) {
			return i, nil
		}
		if err != nil {
			return i, err
		}
		h.watch(runCtx, u, failed)
	}
	return len(units), nil
}

// stopAll stops units in reverse order under one shutdown budget. Once the
// budget is spent, the remaining units are still stopped, with an expired
// context, and share a short grace period to return.
func (h *Host) stopAll(ctx context.Context, units []*unit) error {
	base := context.WithoutCancel(ctx)
	budget, cancel := context.WithTimeout(base, h.shutdownTimeout)
	defer cancel()
	grace, cancelGrace := context.WithTimeout(base, h.shutdownTimeout+lateStopGrace(h.shutdownTimeout))
	defer cancelGrace()

	var errs []error
	for i := len(units) - 1; i >= 0; i-- {
		u := units[i]
		h.unwatch(u)
		wait := budget
		if budget.Err() != nil {
			wait = grace
		}
		if err := h.stop(budget, wait, u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lateStopGrace is how long services whose turn to stop comes after the
// shutdown budget is spent get, together, to return from Stop.
func lateStopGrace(budget time.Duration) time.Duration {
	return min(budget/10, time.Second)
}

// Stop asks Run to stop all services and return. It is safe to call many
// times, concurrently, before Run (Run then starts nothing) and after Run.
func (h *Host) Stop() {
	h.requestStop(errStopCalled)
}

// fail records a fatal failure and asks Run to stop.
func (h *Host) fail(err error) {
	h.mu.Lock()
	h.failures = append(h.failures, err)
	h.mu.Unlock()
	h.requestStop(err)
}

// Started returns a channel closed once every service has started. It is
// never closed if Run stops before that; wait on Stopped as well.
func (h *Host) Started() <-chan struct{} { return h.started }

// Stopping returns a channel closed when Run begins stopping services, after
// a start failure too. A readiness probe should report not ready from then on.
func (h *Host) Stopping() <-chan struct{} { return h.stopping }

// Stopped returns a channel closed when Run has finished stopping services.
func (h *Host) Stopped() <-chan struct{} { return h.stopped }

// States returns a snapshot of every service's state, in the order the
// services were added. It is safe for concurrent use.
func (h *Host) States() []State {
	h.mu.Lock()
	defer h.mu.Unlock()
	states := make([]State, len(h.units))
	for i, u := range h.units {
		states[i] = u.state
	}
	return states
}

// setState changes a unit's state; Since follows Status changes.
func (h *Host) setState(u *unit, status Status, change func(*State)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u.state.Status != status {
		u.state.Status = status
		u.state.Since = time.Now()
	}
	if change != nil {
		change(&u.state)
	}
}

// state returns a copy of a unit's state.
func (h *Host) state(u *unit) State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return u.state
}
