package hosted

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// HostOptions.ShutdownTimeout. Each service's Stop gets a soft deadline
	// and a hard limit within it (see [Host.Run]), so Run returns within
	// the budget even when a service ignores its context; a service that
	// overruns its hard limit is reported and abandoned, and the services
	// after it are still stopped. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// StopDelay is how long the host keeps every service running after it
	// is asked to stop (Run's context ends or Stop is called) and before it
	// stops them, while its "lifecycle" check already reports Unhealthy:
	// the time a load balancer needs to notice that the instance is not
	// ready and send it no new requests. A service failing under the
	// StopHost policy cuts the delay short. Zero, the default, stops at once.
	StopDelay time.Duration
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
	// Heartbeat, when positive, is how often the running service promises
	// to call [Reporter.Beat]: past it without a beat, the service is
	// Unhealthy until it beats again. Zero expects no heartbeat.
	Heartbeat time.Duration
	// Tags are the health probes the service's health counts for, such as
	// [TagReady]; see [Host.CheckHealth]. None means it counts only where
	// every check does (a probe asking for no tag, status pages, metrics).
	Tags []string
}

// Host runs services: it starts them in the order they were added, watches
// them for failures and stops them in reverse order. Create one with [New],
// add services with [Host.Add], then call [Host.Run] once.
type Host struct {
	startTimeout    time.Duration
	shutdownTimeout time.Duration
	stopDelay       time.Duration
	log             *slog.Logger

	// stopCtx is cancelled by Stop or a fatal failure; its cause says which.
	stopCtx     context.Context
	requestStop context.CancelCauseFunc

	started, stopping, stopped chan struct{}
	// hurry is closed by the first fatal failure: it cuts StopDelay short.
	hurry     chan struct{}
	hurryOnce sync.Once

	mu       sync.Mutex
	units    []*unit
	checks   []*check
	names    map[string]bool // of services and checks
	ran      bool
	failures []error // fatal failures, for Run's error
	// When the host was created, started every service, began stopping and
	// finished; zero until then. For the host's own health checks.
	createdAt, startedAt, stoppingAt, stoppedAt time.Time
}

// unit is a service with its options and state.
type unit struct {
	name         string
	svc          Service
	policy       Policy
	startTimeout time.Duration
	maxRestarts  int
	backoff      backoff
	heartbeat    time.Duration
	tags         []string

	state State // guarded by Host.mu
	// Health as reported through the unit's Reporter; guarded by Host.mu.
	health       Health
	healthReason string
	healthSince  time.Time
	lastBeat     time.Time

	// Owned by Run and the unit's watcher.
	quit    chan struct{} // closed when the host stops watching the unit
	exited  chan struct{} // closed when the watcher has returned
	attempt int           // backoff exponent, used by the watcher only
}

// errStopCalled is the stop cause when Host.Stop was called.
var errStopCalled = errors.New("Stop called")

// New returns a Host configured by cfg. It panics if a duration is negative.
func New(cfg Config) *Host {
	if cfg.StartTimeout < 0 || cfg.ShutdownTimeout < 0 || cfg.StopDelay < 0 {
		panic("hosted: negative duration in Config")
	}
	h := &Host{
		startTimeout:    orDefault(cfg.StartTimeout, DefaultStartTimeout),
		shutdownTimeout: orDefault(cfg.ShutdownTimeout, DefaultShutdownTimeout),
		stopDelay:       cfg.StopDelay,
		log:             cfg.Logger,
		started:         make(chan struct{}),
		stopping:        make(chan struct{}),
		stopped:         make(chan struct{}),
		hurry:           make(chan struct{}),
		names:           make(map[string]bool),
		createdAt:       time.Now(),
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
	case opts.StartTimeout < 0 || opts.MaxRestarts < 0 || opts.BackoffMin < 0 || opts.BackoffMax < 0 || opts.Heartbeat < 0:
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
	now := time.Now()
	h.units = append(h.units, &unit{
		name:         name,
		svc:          s,
		policy:       opts.Policy,
		startTimeout: orDefault(opts.StartTimeout, h.startTimeout),
		maxRestarts:  opts.MaxRestarts,
		backoff:      b,
		heartbeat:    opts.Heartbeat,
		tags:         slices.Clone(opts.Tags),
		state:        State{Name: name, Policy: opts.Policy, Status: StatusPending, Since: now},
		healthSince:  now,
	})
}

// Run starts the services in order, each under its start timeout. If one
// fails to start, the ones started are stopped in reverse and Run returns the
// error. Otherwise Run blocks until ctx is done, [Host.Stop] is called or a
// service fails under the StopHost policy. Then the host is stopping
// ([Host.Stopping] is closed and readiness is false), keeps the services
// running for [Config.StopDelay], and stops them in reverse under the
// shutdown budget.
//
// Stopping is soft, then hard. Each service's Stop gets a hard limit: the
// end of the budget, less a reserve for the services still to stop after
// it. Its context ends at the soft deadline, three quarters of the way
// from now to that limit: until then the service should finish the work
// in hand; once the context ends it should abandon it and return. A Stop
// that returns after its soft deadline needed the hard stop: it is logged
// and marked in [State.HardStop]. A Stop that has not returned by its
// hard limit is reported as an error and abandoned.
//
// Run returns the failure and the stop errors joined, or nil if the host was
// asked to stop and every service stopped cleanly. Run may be called only
// once; no goroutine of the host outlives it, except a Start or Stop that
// ignored its context and overran its deadline.
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
	running := n == len(units) && startErr == nil && h.stopCause(ctx) == nil
	if running {
		h.mu.Lock()
		h.startedAt = time.Now()
		h.mu.Unlock()
		close(h.started)
		h.log.Info("host started", slog.Int("services", n))
		select {
		case <-ctx.Done():
		case <-h.stopCtx.Done():
		}
	}

	h.mu.Lock()
	h.stoppingAt = time.Now()
	h.mu.Unlock()
	close(h.stopping)
	reason := h.stopCause(ctx)
	if startErr != nil {
		reason = startErr
	}
	if running && h.stopDelay > 0 {
		h.log.Info("host stopping after a delay; services still run", slog.Any("reason", reason), slog.Duration("stop_delay", h.stopDelay))
		h.delay()
	}
	cancel(reason)
	h.log.Info("host stopping", slog.Any("reason", reason))
	t0 := time.Now()
	stopErr := h.stopAll(ctx, units[:n])
	h.mu.Lock()
	h.stoppedAt = time.Now()
	h.mu.Unlock()
	attrs := []any{slog.Duration("duration", time.Since(t0))}
	if hard := h.hardStopped(units[:n]); len(hard) > 0 {
		attrs = append(attrs, slog.Any("hard_stopped", hard))
	}
	h.log.Info("host stopped", attrs...)

	h.mu.Lock()
	errs := append([]error{startErr}, h.failures...)
	h.mu.Unlock()
	return errors.Join(append(errs, stopErr)...)
}

// hardStopped returns the names of the units whose last stop was hard.
func (h *Host) hardStopped(units []*unit) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for _, u := range units {
		if u.state.HardStop {
			names = append(names, u.name)
		}
	}
	return names
}

// delay waits out StopDelay, or less if a service fails fatally.
func (h *Host) delay() {
	t := time.NewTimer(h.stopDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-h.hurry:
		h.log.Info("stop delay cut short by a failure")
	}
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

// stopAll stops units in reverse order under one shutdown budget: each
// gets a soft deadline and a hard limit (see Run).
func (h *Host) stopAll(ctx context.Context, units []*unit) error {
	base := context.WithoutCancel(ctx)
	end := time.Now().Add(h.shutdownTimeout)
	var errs []error
	for i := len(units) - 1; i >= 0; i-- {
		u := units[i]
		h.unwatch(u)
		soft, hard := stopDeadlines(time.Now(), end, h.shutdownTimeout, i)
		if err := h.stop(base, soft, hard, u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// softShare is the part of a service's stop time, from its turn to its
// hard limit, that is graceful.
const softShare = 0.75

// stopDeadlines returns the soft deadline and the hard limit of a service
// whose turn to stop comes at now, with after services still to stop
// after it, in a budget ending at end. Each service after it has a
// reserve of lateStopGrace (together at most half the budget), so one that
// overruns leaves the others time; a service whose turn comes with nothing
// left still gets a moment to return.
func stopDeadlines(now, end time.Time, budget time.Duration, after int) (soft, hard time.Time) {
	reserve := min(time.Duration(after)*lateStopGrace(budget), budget/2)
	hard = end.Add(-reserve)
	if minimum := now.Add(lateStopGrace(budget) / 2); hard.Before(minimum) {
		hard = minimum
	}
	return now.Add(time.Duration(float64(hard.Sub(now)) * softShare)), hard
}

// lateStopGrace is the time kept, out of the shutdown budget, for each
// service still to stop after the current one.
func lateStopGrace(budget time.Duration) time.Duration {
	return min(budget/10, time.Second)
}

// Stop asks Run to stop all services and return. It is safe to call many
// times, concurrently, before Run (Run then starts nothing) and after Run.
func (h *Host) Stop() {
	h.requestStop(errStopCalled)
}

// fail records a fatal failure and asks Run to stop, without delay.
func (h *Host) fail(err error) {
	h.mu.Lock()
	h.failures = append(h.failures, err)
	h.mu.Unlock()
	h.requestStop(err)
	h.hurryOnce.Do(func() { close(h.hurry) })
}

// Started returns a channel closed once every service has started. It is
// never closed if Run stops before that; wait on Stopped as well.
func (h *Host) Started() <-chan struct{} { return h.started }

// Stopping returns a channel closed when the host begins stopping, after a
// start failure too, before [Config.StopDelay]: services still run, but a
// readiness probe should report not ready from then on (the host's
// "lifecycle" check does), like IHostApplicationLifetime.ApplicationStopping.
func (h *Host) Stopping() <-chan struct{} { return h.stopping }

// Stopped returns a channel closed when Run has finished stopping services.
func (h *Host) Stopped() <-chan struct{} { return h.stopped }

// States returns a snapshot of every service's state, in the order the
// services were added. It is safe for concurrent use.
func (h *Host) States() []State {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	states := make([]State, len(h.units))
	for i, u := range h.units {
		states[i] = u.state
		states[i].Health, states[i].HealthReason, states[i].HealthSince = u.healthLocked(now)
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
