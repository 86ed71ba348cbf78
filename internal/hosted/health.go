package hosted

import (
	"context"
	"fmt"
	"time"
)

// Health is how well a service or check is doing, like ASP.NET Core's
// HealthStatus. The zero value is Healthy.
type Health int

// The health levels, from best to worst.
const (
	Healthy   Health = iota // working as it should
	Degraded                // working, but impaired: slower, retrying, blocked on a peer
	Unhealthy               // not doing its job
)

var healthNames = [...]string{Healthy: "healthy", Degraded: "degraded", Unhealthy: "unhealthy"}

// String returns the level in lower case, such as "degraded".
func (h Health) String() string {
	if h >= 0 && int(h) < len(healthNames) {
		return healthNames[h]
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// MarshalText encodes the level as its String, for JSON health bodies.
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes what MarshalText encodes, for clients of the probes.
func (h *Health) UnmarshalText(text []byte) error {
	for i, name := range healthNames {
		if string(text) == name {
			*h = Health(i)
			return nil
		}
	}
	return fmt.Errorf("unknown health %q", text)
}

// Tags a service or check can carry, as passed to [Host.CheckHealth] and
// [Host.HealthHandler]: the conventional names for readiness and liveness
// probes. Any other string works too.
const (
	// TagReady marks what the instance's readiness depends on: when one of
	// them is Unhealthy, the instance should get no traffic.
	TagReady = "ready"
	// TagLive marks what liveness depends on: when one of them is
	// Unhealthy, the process is wedged and restarting it is the remedy.
	TagLive = "live"
)

// Reporter is how a running service reports its health and heartbeat to
// its host. Get it with [ReporterFrom] from the context passed to Start
// (or to a [Background] function, which carries the same values). A nil
// Reporter, as returned outside a host, discards what it is told. Its
// methods are safe for concurrent use.
type Reporter struct {
	h *Host
	u *unit
}

type reporterKey struct{}

// ReporterFrom returns the Reporter of the service whose Start received
// ctx (or a context derived from it), or nil when there is none. The
// Reporter stays valid across restarts of the service.
func ReporterFrom(ctx context.Context) *Reporter {
	r, _ := ctx.Value(reporterKey{}).(*Reporter)
	return r
}

// Reporter returns the Reporter of the named service, or nil if there is
// none, for wiring a service's own signal (an observer, a callback) to its
// health from outside it: the same Reporter its Start context carries.
func (h *Host) Reporter(name string) *Reporter {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range h.units {
		if u.name == name {
			return &Reporter{h: h, u: u}
		}
	}
	return nil
}

// Report sets the service's health and a short reason, shown on health
// probes and status pages, so it must name no secret and may be public
// ("SMTP server refuses connections", not the server's reply). The health
// stays until the next Report, or until the service starts again, which
// resets it to Healthy. Since changes only when the level does.
func (r *Reporter) Report(health Health, reason string) {
	if r == nil {
		return
	}
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	u := r.u
	if u.health != health || u.healthSince.IsZero() {
		u.healthSince = time.Now()
	}
	u.health, u.healthReason = health, reason
}

// Beat records that the service is alive and making progress. A service
// added with [Options.Heartbeat] that has not beaten for longer than that
// interval while running is Unhealthy until it beats again.
func (r *Reporter) Beat() {
	if r == nil {
		return
	}
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	r.u.lastBeat = time.Now()
}

// resetHealth makes a starting unit Healthy, with a fresh heartbeat. The
// caller holds h.mu.
func (u *unit) resetHealth(now time.Time) {
	u.health, u.healthReason, u.healthSince, u.lastBeat = Healthy, "", now, now
}

// healthLocked is the health of u as of now: what it reported while it
// runs, unless its heartbeat is overdue, and what its lifecycle says
// otherwise. The caller holds h.mu.
func (u *unit) healthLocked(now time.Time) (Health, string, time.Time) {
	s := u.state
	switch s.Status {
	case StatusRunning:
		if u.heartbeat > 0 {
			if late := now.Sub(u.lastBeat); late > u.heartbeat {
				return Unhealthy, fmt.Sprintf("no heartbeat for %v (expected every %v)", late.Round(time.Millisecond), u.heartbeat),
					u.lastBeat.Add(u.heartbeat)
			}
		}
		return u.health, u.healthReason, u.healthSince
	case StatusPending:
		return Unhealthy, "not started", s.Since
	case StatusStarting:
		return Unhealthy, "starting", s.Since
	case StatusRestarting:
		return Unhealthy, "restarting after a failure", s.Since
	case StatusStopping:
		return Unhealthy, "stopping", s.Since
	case StatusFailed:
		return Unhealthy, "failed", s.Since
	}
	// Stopped: by the host, or finished on its own, which is no failure.
	return Healthy, "stopped", s.Since
}
