package hosted

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// CheckFunc is a health check that is not a service, such as a database
// ping: it returns the health and a short reason, which probes show to
// whoever can reach them, so it must name no secret (say "database
// unreachable", not the driver's error). It should return within ctx.
type CheckFunc func(ctx context.Context) (Health, string)

// Check is the outcome of one check or service, as listed in a
// [HealthReport].
type Check struct {
	Name   string    `json:"name"`
	Health Health    `json:"status"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"` // when Health last changed
	Tags   []string  `json:"tags,omitempty"`
}

// HealthReport is the outcome of [Host.CheckHealth]: the worst health of
// the checks, and each check in order (the host's own first, then added
// checks, then services in the order they were added).
type HealthReport struct {
	Health Health  `json:"status"`
	Checks []Check `json:"checks"`
}

// check is a CheckFunc added with AddCheck, with what it last returned.
type check struct {
	name  string
	fn    CheckFunc
	tags  []string
	last  Health // guarded by Host.mu
	since time.Time
}

// Names of the host's own checks.
const (
	// lifecycleCheck is Unhealthy until every service has started and from
	// the moment the host begins stopping: an instance neither takes nor
	// keeps traffic then. Tagged ready.
	lifecycleCheck = "lifecycle"
	// hostCheck is Unhealthy when stopping has overrun the shutdown budget
	// and its grace: the process should have ended and is wedged. Tagged
	// live.
	hostCheck = "host"
)

// AddCheck adds a health check that is not a service, such as a database
// ping, under a name unique among checks and services, with the tags it
// counts for. It panics if Run has been called, or the name is empty or
// taken, or fn is nil.
func (h *Host) AddCheck(name string, fn CheckFunc, tags ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case name == "" || fn == nil:
		panic(fmt.Sprintf("hosted: AddCheck %q with an empty name or a nil func", name))
	case h.ran:
		panic(fmt.Sprintf("hosted: AddCheck %q after Run", name))
	case h.names[name] || name == lifecycleCheck || name == hostCheck:
		panic(fmt.Sprintf("hosted: AddCheck %q: name already taken", name))
	}
	h.names[name] = true
	h.checks = append(h.checks, &check{name: name, fn: fn, tags: slices.Clone(tags), since: time.Now()})
}

// CheckHealth runs the checks and reads the services' health, keeping
// those with any of tags (all of them when tags is empty), and returns the
// worst health with each check, like ASP.NET Core's HealthCheckService.
// The host's own checks come first: "lifecycle" (tag ready) and "host"
// (tag live). It is safe for concurrent use.
func (h *Host) CheckHealth(ctx context.Context, tags ...string) HealthReport {
	wants := func(have []string) bool {
		return len(tags) == 0 || slices.ContainsFunc(have, func(t string) bool { return slices.Contains(tags, t) })
	}
	var rep HealthReport
	add := func(c Check) {
		rep.Checks = append(rep.Checks, c)
		rep.Health = max(rep.Health, c.Health)
	}

	h.mu.Lock()
	checks := slices.Clone(h.checks)
	h.mu.Unlock()
	results := make([]Check, 0, len(checks))
	for _, c := range checks {
		if !wants(c.tags) {
			continue
		}
		health, reason := c.fn(ctx)
		results = append(results, Check{Name: c.name, Health: health, Reason: reason, Tags: c.tags})
	}

	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.ownChecksLocked(now) {
		if wants(c.Tags) {
			add(c)
		}
	}
	for i, c := range results {
		ck := checks[slices.IndexFunc(checks, func(k *check) bool { return k.name == c.Name })]
		if ck.last != c.Health {
			ck.last, ck.since = c.Health, now
		}
		results[i].Since = ck.since
		add(results[i])
	}
	for _, u := range h.units {
		if wants(u.tags) {
			health, reason, since := u.healthLocked(now)
			add(Check{Name: u.name, Health: health, Reason: reason, Since: since, Tags: u.tags})
		}
	}
	return rep
}

// ownChecksLocked returns the host's own checks as of now. The caller
// holds h.mu.
func (h *Host) ownChecksLocked(now time.Time) []Check {
	life := Check{Name: lifecycleCheck, Health: Healthy, Reason: "running", Since: h.startedAt, Tags: []string{TagReady}}
	host := Check{Name: hostCheck, Health: Healthy, Reason: "running", Since: h.createdAt, Tags: []string{TagLive}}
	switch {
	case !h.stoppedAt.IsZero():
		life.Health, life.Reason, life.Since = Unhealthy, "stopped", h.stoppedAt
		host.Reason, host.Since = "stopped", h.stoppedAt
	case !h.stoppingAt.IsZero():
		life.Health, life.Reason, life.Since = Unhealthy, "stopping", h.stoppingAt
		overdue := h.stoppingAt.Add(h.stopDelay + h.shutdownTimeout + lateStopGrace(h.shutdownTimeout))
		if now.After(overdue) {
			host.Health, host.Reason, host.Since = Unhealthy, "stopping has overrun the shutdown budget", overdue
		} else {
			host.Reason = "stopping"
		}
	case h.startedAt.IsZero():
		life.Health, life.Reason, life.Since = Unhealthy, "starting", h.createdAt
	}
	return []Check{life, host}
}
