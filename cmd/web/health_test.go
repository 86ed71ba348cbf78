package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"signup/internal/hosted"
	"signup/internal/waitfor"
)

// probeJSON asks url for its health report as JSON.
func probeJSON(t *testing.T, url string) (int, hosted.HealthReport) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	var rep hosted.HealthReport
	if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return res.StatusCode, rep
}

// TestUnhealthyServiceTurnsReadyzOff: in the wired application, a service
// readiness depends on that reports Unhealthy turns /readyz 503, naming it;
// healthy again, /readyz is 200 again. /livez stays 200 throughout.
func TestUnhealthyServiceTurnsReadyzOff(t *testing.T) {
	e := baseEnv(t)
	e["HTTP_ADDR"] = "127.0.0.1:0"
	e["OPS_ADDR"] = ""
	a := buildFromEnv(t, e, nil)
	health := make(chan hosted.Health)
	a.host.Add("worker", hosted.Background(func(ctx context.Context) error {
		r := hosted.ReporterFrom(ctx)
		for {
			select {
			case <-ctx.Done():
				return nil
			case h := <-health:
				r.Report(h, "worker says "+h.String())
			}
		}
	}), hosted.Options{Tags: []string{hosted.TagReady}})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.host.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-a.host.Started():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	site := "http://" + a.site.Addr()

	code, rep := probeJSON(t, site+"/readyz")
	if code != http.StatusOK || rep.Health != hosted.Healthy {
		t.Fatalf("/readyz running: %d %+v", code, rep)
	}
	names := map[string]bool{}
	for _, c := range rep.Checks {
		names[c.Name] = true
	}
	for _, want := range []string{"lifecycle", "postgres", "mail", "http", "worker"} {
		if !names[want] {
			t.Errorf("/readyz lists no %q check: %+v", want, rep.Checks)
		}
	}
	if names["purge"] || names["database"] {
		t.Errorf("/readyz lists services readiness does not depend on: %+v", rep.Checks)
	}

	health <- hosted.Unhealthy
	waitfor.Until(t, time.Minute, func() error {
		if code, rep := probeJSON(t, site+"/readyz"); code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz %d %+v, want 503", code, rep)
		}
		return nil
	})
	_, rep = probeJSON(t, site+"/readyz")
	for _, c := range rep.Checks {
		if c.Name == "worker" && (c.Health != hosted.Unhealthy || c.Reason != "worker says unhealthy") {
			t.Errorf("worker check %+v", c)
		}
	}
	if code, rep := probeJSON(t, site+"/livez"); code != http.StatusOK {
		t.Errorf("/livez %d %+v with an unready worker, want 200", code, rep)
	}

	health <- hosted.Healthy
	waitfor.Until(t, time.Minute, func() error {
		if code, rep := probeJSON(t, site+"/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz %d %+v, want 200 again", code, rep)
		}
		return nil
	})
}
