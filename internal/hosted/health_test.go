package hosted

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// probe asks h's handler for tags, as JSON, and returns the status code
// and the decoded report.
func probe(t *testing.T, h *Host, tags ...string) (int, HealthReport) {
	t.Helper()
	req := httptest.NewRequest("GET", "/readyz", nil)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	h.HealthHandler(tags...).ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var rep HealthReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("decode %q: %v", rec.Body.String(), err)
	}
	return rec.Code, rep
}

// find returns the check named name in rep.
func (rep HealthReport) find(t *testing.T, name string) Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, rep.Checks)
	return Check{}
}

// TestUnhealthyServiceTurnsReadinessOffAndBack: a service tagged ready that
// reports Unhealthy makes the ready probe answer 503, naming it and why;
// Degraded keeps it 200; Healthy again brings it back.
func TestUnhealthyServiceTurnsReadinessOffAndBack(t *testing.T) {
	b := setup(t, Config{})
	reports := make(chan func(*Reporter))
	b.host.Add("sender", Background(func(ctx context.Context) error {
		r := ReporterFrom(ctx)
		for {
			select {
			case <-ctx.Done():
				return nil
			case f := <-reports:
				f(r)
			}
		}
	}), Options{Tags: []string{TagReady}})
	b.add("purger", Options{}) // untagged: not part of readiness
	tell := func(f func(*Reporter)) {
		select {
		case reports <- f:
		case <-time.After(patience):
			t.Fatal("the service took no report")
		}
	}

	if code, rep := probe(t, b.host, TagReady); code != http.StatusServiceUnavailable || rep.find(t, lifecycleCheck).Reason != "starting" {
		t.Errorf("before Run: %d %+v, want 503 starting", code, rep)
	}
	b.run(t, t.Context())
	waitClosed(t, b.host.Started(), "started")
	code, rep := probe(t, b.host, TagReady)
	if code != http.StatusOK || rep.Health != Healthy {
		t.Fatalf("running: %d %+v, want 200 healthy", code, rep)
	}
	for _, c := range rep.Checks {
		if c.Name == "purger" {
			t.Errorf("an untagged service is in the ready probe: %+v", c)
		}
	}

	before := time.Now()
	tell(func(r *Reporter) { r.Report(Unhealthy, "SMTP server refuses connections") })
	tell(func(*Reporter) {}) // the report above has been made
	code, rep = probe(t, b.host, TagReady)
	c := rep.find(t, "sender")
	if code != http.StatusServiceUnavailable || rep.Health != Unhealthy || c.Health != Unhealthy ||
		c.Reason != "SMTP server refuses connections" || c.Since.Before(before) || len(c.Tags) != 1 {
		t.Errorf("unhealthy: %d %+v", code, rep)
	}
	if s := b.state(t, "sender"); s.Health != Unhealthy || s.HealthReason != c.Reason {
		t.Errorf("State: %v %q, want what the probe says", s.Health, s.HealthReason)
	}

	tell(func(r *Reporter) { r.Report(Degraded, "blocked") })
	tell(func(*Reporter) {})
	if code, rep = probe(t, b.host, TagReady); code != http.StatusOK || rep.Health != Degraded {
		t.Errorf("degraded: %d %+v, want 200 degraded", code, rep)
	}
	tell(func(r *Reporter) { r.Report(Healthy, "") })
	tell(func(*Reporter) {})
	if code, rep = probe(t, b.host, TagReady); code != http.StatusOK || rep.Health != Healthy {
		t.Errorf("healthy again: %d %+v, want 200 healthy", code, rep)
	}

	// Liveness is not readiness: an unhealthy ready service leaves it on.
	tell(func(r *Reporter) { r.Report(Unhealthy, "down") })
	tell(func(*Reporter) {})
	if code, rep = probe(t, b.host, TagLive); code != http.StatusOK || len(rep.Checks) != 1 || rep.Checks[0].Name != hostCheck {
		t.Errorf("live: %d %+v, want 200 with the host check only", code, rep)
	}

	b.host.Stop()
	waitClosed(t, b.host.Stopped(), "stopped")
	if code, rep = probe(t, b.host, TagReady); code != http.StatusServiceUnavailable || rep.find(t, lifecycleCheck).Reason != "stopped" {
		t.Errorf("after Run: %d %+v, want 503 stopped", code, rep)
	}
}

// TestHealthProbeText: without Accept: application/json the probe answers
// one word, and never caches.
func TestHealthProbeText(t *testing.T) {
	h := New(Config{})
	rec := httptest.NewRecorder()
	h.HealthHandler(TagLive).ServeHTTP(rec, httptest.NewRequest("GET", "/livez", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "healthy\n" || rec.Header().Get("Cache-Control") != "no-store" ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Errorf("livez: %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
}

// TestAddedChecks: a check that is not a service counts for its tags, and
// its since follows changes of its health.
func TestAddedChecks(t *testing.T) {
	b := setup(t, Config{})
	var down bool
	b.host.AddCheck("database", func(context.Context) (Health, string) {
		if down {
			return Unhealthy, "database unreachable"
		}
		return Healthy, ""
	}, TagReady)
	b.run(t, t.Context())
	waitClosed(t, b.host.Started(), "started")

	_, rep := probe(t, b.host, TagReady)
	first := rep.find(t, "database")
	down = true // the probe runs checks on this goroutine
	code, rep := probe(t, b.host, TagReady)
	c := rep.find(t, "database")
	if code != http.StatusServiceUnavailable || c.Reason != "database unreachable" || !c.Since.After(first.Since) {
		t.Errorf("database down: %d %+v (before %+v)", code, c, first)
	}
	if _, rep := probe(t, b.host, TagLive); len(rep.Checks) != 1 {
		t.Errorf("live probe has %+v, want the host check only", rep.Checks)
	}
	if _, rep := probe(t, b.host); len(rep.Checks) != 3 {
		t.Errorf("untagged probe has %+v, want every check", rep.Checks)
	}
}

// TestHeartbeat: a running service that has not beaten within its
// interval is Unhealthy until it beats again; a restart resets it.
func TestHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		beat := make(chan struct{})
		h := New(Config{})
		h.Add("worker", Background(func(ctx context.Context) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-beat:
					ReporterFrom(ctx).Beat()
				}
			}
		}), Options{Heartbeat: time.Minute, Tags: []string{TagLive}})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- h.Run(ctx) }()
		<-h.Started()

		time.Sleep(59 * time.Second)
		if s := h.States()[0]; s.Health != Healthy {
			t.Fatalf("within the interval: %v %q", s.Health, s.HealthReason)
		}
		time.Sleep(2 * time.Second)
		s := h.States()[0]
		if s.Health != Unhealthy || s.HealthReason != "no heartbeat for 1m1s (expected every 1m0s)" {
			t.Fatalf("overdue: %v %q", s.Health, s.HealthReason)
		}
		if code, _ := probe(t, h, TagLive); code != http.StatusServiceUnavailable {
			t.Errorf("live probe %d with a missed heartbeat, want 503", code)
		}
		beat <- struct{}{}
		synctest.Wait()
		if s := h.States()[0]; s.Health != Healthy {
			t.Fatalf("after a beat: %v %q", s.Health, s.HealthReason)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}

// TestReporterOutsideAHost: a service run without a host may report; it
// goes nowhere.
func TestReporterOutsideAHost(t *testing.T) {
	r := ReporterFrom(t.Context())
	r.Report(Unhealthy, "nobody listens")
	r.Beat()
	if r != nil {
		t.Fatal("a Reporter outside a host")
	}
}

func TestHealthStrings(t *testing.T) {
	for h, want := range map[Health]string{Healthy: "healthy", Degraded: "degraded", Unhealthy: "unhealthy", 7: "Health(7)"} {
		if got := h.String(); got != want {
			t.Errorf("%d: %q, want %q", int(h), got, want)
		}
	}
}

// TestReporterFromOutside: the Reporter a host hands out by name reports for
// that service, as the one in its context does.
func TestReporterFromOutside(t *testing.T) {
	b := setup(t, Config{})
	b.add("mail", Options{Tags: []string{TagReady}})
	if b.host.Reporter("nope") != nil {
		t.Error("a Reporter for a service never added")
	}
	r := b.host.Reporter("mail")
	b.run(t, t.Context())
	waitClosed(t, b.host.Started(), "started")
	r.Report(Degraded, "blocked")
	if s := b.state(t, "mail"); s.Health != Degraded || s.HealthReason != "blocked" {
		t.Errorf("mail: %v %q, want degraded, blocked", s.Health, s.HealthReason)
	}
}
