package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"signup/internal/devmail"
	"signup/internal/e2e"
	"signup/internal/waitfor"
)

// metricFamilies is a parsed scrape.
type metricFamilies map[string]*dto.MetricFamily

// scrape fetches and parses /metrics with Prometheus's own text parser.
func scrape(t *testing.T, opsURL string) metricFamilies {
	t.Helper()
	res, err := http.Get(opsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", res.StatusCode)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value is the value of the series of family name whose labels include
// labels (counter, gauge, or a histogram's count); ok is false when there
// is none.
func (m metricFamilies) value(name string, labels ...string) (float64, bool) {
	mf := m[name]
	if mf == nil {
		return 0, false
	}
series:
	for _, s := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range s.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue series
			}
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount()), true
		case s.Untyped != nil:
			return s.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsAfterKnownActions runs the wired app with its ops listener,
// signs up, confirms from the email, signs in, and reads every metric those
// actions, the email and the purger's start-up run must have moved.
func TestMetricsAfterKnownActions(t *testing.T) {
	start := time.Now()
	r := startApp(t, nil, ranBefore(t))
	site, opsURL, smtp := r.site, r.ops, r.smtp

	// The purger catches up at start: the database has a run from before
	// the latest tick of its nightly schedule, and no run served that
	// tick. It runs in the background; its run is awaited through the
	// metrics themselves.
	waitMetric(t, opsURL, time.Minute, "signup_purge_runs_total", "outcome", "succeeded")

	c := e2e.NewClient()
	const email, password = "metrics@example.com", "a long and unusual passphrase"
	c.Signup(t, site, email)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	msgs, err := smtp.Wait(ctx, func(m []devmail.Message) bool { return len(m) == 1 })
	if err != nil {
		t.Fatalf("no confirmation email: %v", err)
	}
	var token string
	for _, l := range msgs[0].Links {
		if u, err := url.Parse(l); err == nil && u.Path == "/confirm" {
			token = u.Query().Get("token")
		}
	}
	res, err := c.HTTP.Get(site + "/confirm?token=" + url.QueryEscape(token))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("confirm page = %d", res.StatusCode)
	}
	if status, err := c.PostForm(site, "/confirm", url.Values{"token": {token}}); err != nil || status != http.StatusOK {
		t.Fatalf("confirm = %d, %v", status, err)
	}
	if status, err := c.PostForm(site, "/login", url.Values{"email": {email}, "password": {password}}); err != nil || status != http.StatusSeeOther {
		t.Fatalf("sign in = %d, %v", status, err)
	}

	// The sender records the email as sent after the peer took it; the
	// metric follows the database write.
	m := waitMetric(t, opsURL, time.Minute, "signup_emails_sent_total", "kind", "confirm")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"signup_signups_total", nil, 1},
		{"signup_confirmations_total", nil, 1},
		{"signup_sign_ins_total", nil, 1},
		{"signup_emails_sent_total", []string{"kind", "confirm"}, 1},
		{"signup_emails_retried_total", []string{"kind", "confirm"}, 0},
		{"signup_emails_failed_total", []string{"kind", "confirm"}, 0},
		{"signup_email_send_duration_seconds", []string{"kind", "confirm"}, 1},
		{"signup_mail_queue_wait_seconds", nil, 1},
		{"signup_mail_queue_length", nil, 0},
		{"signup_mail_queue_capacity", nil, 4096},
		{"signup_outbox_rows", []string{"status", "sent"}, 1},
		{"signup_outbox_rows", []string{"status", "pending"}, 0},
		{"signup_outbox_rows", []string{"status", "failed"}, 0},
		{"signup_purge_runs_total", []string{"outcome", "succeeded"}, 1},
		{"signup_purge_runs_total", []string{"outcome", "failed"}, 0},
		{"signup_purge_rows_total", []string{"category", "unconfirmed"}, 0},
		{"signup_http_requests_total", []string{"route", "/signup", "method", "POST", "status", "303"}, 1},
		{"signup_http_requests_total", []string{"route", "/confirm", "method", "GET", "status", "200"}, 1},
		{"signup_http_requests_total", []string{"route", "/confirm", "method", "POST", "status", "200"}, 1},
		{"signup_http_requests_total", []string{"route", "/login", "method", "POST", "status", "303"}, 1},
		{"signup_http_request_duration_seconds", []string{"route", "/signup", "method", "POST"}, 1},
		{"signup_service_state", []string{"service", "database", "state", "running"}, 1},
		{"signup_service_state", []string{"service", "mail", "state", "running"}, 1},
		{"signup_service_state", []string{"service", "purge", "state", "running"}, 1},
		{"signup_service_state", []string{"service", "ops", "state", "running"}, 1},
		{"signup_service_state", []string{"service", "http", "state", "running"}, 1},
		{"signup_service_state", []string{"service", "http", "state", "failed"}, 0},
		{"signup_service_health", []string{"health", "healthy", "service", "mail"}, 1},
		{"signup_service_health", []string{"health", "unhealthy", "service", "purge"}, 0},
		{"signup_service_restarts_total", []string{"service", "mail"}, 0},
	} {
		got, ok := m.value(c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// Paths are never labels: only route patterns.
	for _, s := range m["signup_http_requests_total"].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == "route" && strings.Contains(l.GetValue(), "token") {
				t.Errorf("a route label carries a query: %q", l.GetValue())
			}
		}
	}
	last, ok := m.value("signup_purge_last_success_timestamp_seconds")
	if !ok || last < float64(start.Unix()) || last > float64(time.Now().Unix()+1) {
		t.Errorf("signup_purge_last_success_timestamp_seconds = %v (present %v), want between %d and now", last, ok, start.Unix())
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if _, ok := m.value(name); !ok {
			t.Errorf("no %s", name)
		}
	}
	for name, mf := range m {
		if !strings.HasPrefix(name, "signup_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "promhttp_") {
			t.Errorf("unexpected metric %s", name)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
	}
}

// waitMetric scrapes until the series is at least 1, and returns that
// scrape. The app is watched from outside, as a Prometheus server watches
// it, so this polls, within a deadline.
func waitMetric(t *testing.T, opsURL string, timeout time.Duration, name string, labels ...string) metricFamilies {
	t.Helper()
	var m metricFamilies
	waitfor.Until(t, timeout, func() error {
		m = scrape(t, opsURL)
		if v, _ := m.value(name, labels...); v < 1 {
			return fmt.Errorf("%s%v is still %v", name, labels, v)
		}
		return nil
	})
	return m
}
