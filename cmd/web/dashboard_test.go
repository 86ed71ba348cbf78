package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"signup/internal/e2e"
	"signup/internal/pagetest"
	"signup/internal/waitfor"
)

// get fetches path from base and returns the response and its body.

// waitOutbox waits until the app's outbox holds sent and failed rows and
// nothing pending or being sent.
func waitOutbox(t *testing.T, r *running, sent, failed int64) {
	t.Helper()
	waitfor.Until(t, time.Minute, func() error {
		c, err := r.db.Outbox().Counts(t.Context())
		if err != nil {
			return fmt.Errorf("count outbox rows: %w", err)
		}
		if c.Sent != sent || c.Failed != failed || c.Pending != 0 || c.Sending != 0 {
			return fmt.Errorf("outbox %+v, want %d sent and %d failed", c, sent, failed)
		}
		return nil
	})
}

// TestDashboard runs the wired app and renders every section of its status
// dashboard from real data: three emails sent and one refused for good by
// the SMTP peer, the purger's catch-up run described as one; then retries
// the failed email from the page, after a cross-origin retry was refused.
func TestDashboard(t *testing.T) {
	r := startApp(t, nil, ranBefore(t))
	waitfor.Until(t, time.Minute, func() error {
		runs, err := r.db.Purges().LastRuns(t.Context(), 1)
		if err != nil {
			return fmt.Errorf("list purge runs: %w", err)
		}
		if len(runs) == 0 || runs[0].Scheduled.IsZero() || runs[0].FinishedAt.IsZero() {
			return fmt.Errorf("the purger's catch-up run has not finished: last runs %+v", runs)
		}
		if runs[0].Error != "" {
			return fmt.Errorf("the catch-up run failed: %s", runs[0].Error)
		}
		return nil
	})
	c := e2e.NewClient()
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		c.Signup(t, r.site, e)
	}
	waitOutbox(t, r, 3, 0)
	r.smtp.FailNext(1, 550)
	const refused = "refused@example.com"
	c.Signup(t, r.site, refused)
	waitOutbox(t, r, 3, 1)
	failures, err := r.db.Outbox().Failures(t.Context(), 1)
	if err != nil || len(failures) != 1 || failures[0].Email != refused {
		t.Fatalf("failed rows %+v, %v; want the one to %s", failures, err, refused)
	}
	failed := failures[0]

	res, page := pagetest.Get(t, r.ops+"/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", res.StatusCode)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy %q; want default-src 'none' and no scripts", csp)
	}
	if strings.Contains(page, "<script") {
		t.Error("the page has a script")
	}
	// Refreshing drops ?retried=, so its notice shows once.
	pagetest.MustContain(t, "page", page, `<meta http-equiv="refresh" content="5; url=/">`)
	services := pagetest.Section(t, page, "services")
	for _, s := range []string{"database", "mail", "purge", "ops", "http"} {
		pagetest.MustContain(t, "services", services, `<th scope="row">`+s+`</th>`)
	}
	if n := strings.Count(services, ">running<"); n != 5 {
		t.Errorf("%d services running, want 5:\n%s", n, services)
	}
	pagetest.MustContain(t, "mail", pagetest.Section(t, page, "queue"),
		`<dd id="queue-depth">0 / 4096</dd>`, `<dd id="outbox-sent">3</dd>`, `<dd id="outbox-failed">1</dd>`,
		`<dd id="outbox-pending">0</dd>`, `<dd id="oldest-pending">none</dd>`)
	chart := pagetest.Section(t, page, "chart")
	pagetest.MustContain(t, "chart", chart, "<svg", "3 sent in the last 60 minutes")
	if n := strings.Count(chart, `<rect class="bar"`); n != 60 {
		t.Errorf("chart has %d bars, want 60", n)
	}
	retryPath := "/outbox/" + strconv.FormatInt(failed.ID, 10) + "/retry"
	pagetest.MustContain(t, "failures", pagetest.Section(t, page, "failures"), refused, "550", `action="`+retryPath+`"`)
	// The default schedule ticks at 03:00 UTC; the database has a run from
	// before the latest tick, so the start caught that tick up, and says so.
	purgeHTML := pagetest.Section(t, page, "purge")
	pagetest.MustContain(t, "purge", purgeHTML, "caught up: the 03:00 run was missed", "unconfirmed 0", ">ok<", `<strong id="next-run">`)
	if strings.Contains(purgeHTML, `id="next-run">none`) {
		t.Error("no next purge run shown")
	}

	// A cross-origin POST is refused and changes nothing.
	if res := pagetest.PostForm(t, r.ops+retryPath, "http://evil.example", "cross-site", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin retry = %d, want 403", res.StatusCode)
	}
	if c, err := r.db.Outbox().Counts(t.Context()); err != nil || c.Failed != 1 {
		t.Fatalf("after a refused retry: %+v, %v; want 1 failed", c, err)
	}

	// The same-origin retry puts the row back to pending and queues it;
	// this time the peer takes it.
	res = pagetest.PostForm(t, r.ops+retryPath, r.ops, "same-origin", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/?retried=queued#failures" {
		t.Fatalf("retry = %d to %q, want 303 to /?retried=queued#failures", res.StatusCode, res.Header.Get("Location"))
	}
	waitOutbox(t, r, 4, 0)
	if msgs := r.smtp.MessagesTo(refused); len(msgs) != 1 {
		t.Errorf("%s got %d messages after the retry, want 1", refused, len(msgs))
	}
	_, page = pagetest.Get(t, r.ops+"/?retried=queued")
	pagetest.MustContain(t, "page after retry", page, "queued for sending", `<dd id="outbox-failed">0</dd>`, `<dd id="outbox-sent">4</dd>`, "No failed email.")

	// Retrying it again finds nothing failed.
	if res := pagetest.PostForm(t, r.ops+retryPath, r.ops, "same-origin", nil); res.Header.Get("Location") != "/?retried=gone#failures" {
		t.Errorf("second retry went to %q", res.Header.Get("Location"))
	}
	if res := pagetest.PostForm(t, r.ops+"/outbox/nope/retry", r.ops, "same-origin", nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("retry of a bad id = %d, want 400", res.StatusCode)
	}

	// The same events, as metrics.
	_, metrics := pagetest.Get(t, r.ops+"/metrics")
	pagetest.MustContain(t, "metrics", metrics,
		`signup_signups_total 4`,
		`signup_emails_sent_total{kind="confirm"} 4`,
		`signup_emails_failed_total{kind="confirm"} 1`,
		`signup_emails_retried_total{kind="confirm"} 0`,
		`signup_email_send_duration_seconds_count{kind="confirm"} 5`,
		`signup_outbox_rows{status="sent"} 4`,
		`signup_purge_runs_total{outcome="succeeded"} 1`,
		`signup_service_state{service="mail",state="running"} 1`,
		`signup_service_health{health="healthy",service="mail"} 1`,
		`signup_service_health{health="unhealthy",service="mail"} 0`,
	)
}

// TestOpsRoutes: on the wired app's ops listener, pprof is mounted (but
// not the command line), the style sheet is served, a large body is
// refused.
func TestOpsRoutes(t *testing.T) {
	r := startApp(t, nil, nil)
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
		"/ops.css":                       "svg .bar",
		"/metrics":                       "signup_mail_queue_capacity 4096",
	} {
		res, body := pagetest.Get(t, r.ops+path)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d, body lacks %q", path, res.StatusCode, want)
		}
	}
	if res, body := pagetest.Get(t, r.ops+"/debug/pprof/cmdline"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/cmdline = %d with %q, want 404: the command line may hold secrets", res.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPost, r.ops+"/outbox/1/retry", strings.NewReader(strings.Repeat("x", 17<<10)))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 17 KiB body = %d, want 413", res.StatusCode)
	}
}
