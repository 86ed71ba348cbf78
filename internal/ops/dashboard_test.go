package ops_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"signup/internal/account"
	"signup/internal/devmail"
	"signup/internal/hosted"
	"signup/internal/mail"
	"signup/internal/ops"
	"signup/internal/purge"
	"signup/internal/store"
	"signup/internal/store/storetest"
	"signup/web"
)

// testTimeout bounds every wait; the tests never sleep.
const testTimeout = 20 * time.Second

// bundle is the ops handler under test and the real services behind it.
type bundle struct {
	srv      *httptest.Server
	db       *store.DB
	smtp     *devmail.Server
	accounts *account.Service
	results  chan mail.Result
	runs     chan purge.Outcome
}

// purgeRuns tells the test of each purge attempt, besides the metrics.
type purgeRuns struct {
	*ops.Metrics
	ch chan purge.Outcome
}

func (p purgeRuns) Ran(o purge.Outcome, rep purge.Report) {
	p.Metrics.Ran(o, rep)
	p.ch <- o
}

// setup runs a host with the real mail sender and purger on a fresh
// database and a devmail SMTP peer, and serves the ops handler over them.
func setup(t *testing.T, opts ...func(*ops.HandlerConfig)) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	b := &bundle{db: storetest.New(t), smtp: devmail.New(devmail.Config{}),
		results: make(chan mail.Result, 100), runs: make(chan purge.Outcome, 100)}
	if err := b.smtp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.smtp.Stop(context.Background()) })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}

	host := hosted.New(hosted.Config{Logger: logger})
	queue := hosted.NewQueue[mail.Job](64)
	reg := prometheus.NewRegistry()
	metrics, err := ops.NewMetrics(reg, ops.MetricsConfig{Services: host.States, Queue: queue, Outbox: b.db.Outbox(), Purges: b.db.Purges(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	b.accounts = account.NewService(account.Config{
		Repo:     b.db.Accounts(),
		Hasher:   account.NewHasher(account.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2),
		Notifier: account.NotifierFunc(func(id int64) { queue.TryEnqueue(mail.NewJob(id)) }),
		Observer: metrics,
	})
	smtpServer, err := mail.ParseSMTPURL(b.smtp.SMTPURL())
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("http://localhost:8080")
	composer, err := account.NewComposer(account.ComposerConfig{Templates: web.Emails, Tokens: b.db.Accounts(), BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	sender, err := mail.New(mail.Config{
		Outbox: b.db.Outbox(), Queue: queue, SMTP: smtpServer, Composer: composer,
		SweepEvery: 50 * time.Millisecond, Lease: 10 * time.Second, SendTimeout: 5 * time.Second,
		Instance: "ops-test", Logger: logger, Observer: metrics,
		OnResult: func(r mail.Result) { b.results <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	purger, err := purge.New(purge.Config{Store: b.db.Purges(), Schedule: "@every 1h", Instance: "ops-test",
		Logger: logger, Observer: purgeRuns{metrics, b.runs}})
	if err != nil {
		t.Fatal(err)
	}
	host.Add("mail", sender, hosted.Options{})
	host.Add("purge", purger, hosted.Options{})

	dash, err := ops.NewDashboard(ops.DashboardConfig{
		Services: host.States, Queue: queue, Outbox: b.db.Outbox(), Purges: purger,
		Enqueue: func(id int64) bool { return queue.TryEnqueue(mail.NewJob(id)) },
		Sender:  sender.Blocked,
		Logger:  logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	hc := ops.HandlerConfig{Gatherer: reg, Dashboard: dash, Logger: logger}
	for _, o := range opts {
		o(&hc)
	}
	h, err := ops.NewHandler(hc)
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)

	done := make(chan error, 1)
	go func() { done <- host.Run(context.Background()) }()
	t.Cleanup(func() {
		host.Stop()
		if err := <-done; err != nil {
			t.Errorf("host: %v", err)
		}
	})
	select {
	case <-host.Started():
	case err := <-done:
		t.Fatalf("host stopped at start: %v", err)
	case <-ctx.Done():
		t.Fatal("host did not start")
	}
	return b
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// signup signs an address up and waits for the sender's outcome.
func (b *bundle) signup(t *testing.T, email string) mail.Result {
	t.Helper()
	if _, err := b.accounts.Signup(t.Context(), email, "a long and unusual passphrase"); err != nil {
		t.Fatalf("signup %s: %v", email, err)
	}
	return b.result(t)
}

// result waits for the sender's next settled attempt.
func (b *bundle) result(t *testing.T) mail.Result {
	t.Helper()
	select {
	case r := <-b.results:
		return r
	case <-time.After(testTimeout):
		t.Fatal("no mail attempt settled")
	}
	return mail.Result{}
}

// get fetches path from the ops listener.
func (b *bundle) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(b.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// post sends an empty form to path with the given fetch metadata.
func (b *bundle) post(t *testing.T, path, origin, fetchSite string) *http.Response {
	t.Helper()
	return b.postForm(t, path, origin, fetchSite, nil)
}

// postForm sends form to path with the given fetch metadata.
func (b *bundle) postForm(t *testing.T, path, origin, fetchSite string, form url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	req.Header.Set("Sec-Fetch-Site", fetchSite)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// section returns the HTML of the page's section with this id.
func section(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<section id="` + id + `".*?</section>`).FindString(page)
	if m == "" {
		t.Fatalf("page has no section %q:\n%s", id, page)
	}
	return m
}

func mustContain(t *testing.T, what, html string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(html, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, html)
		}
	}
}

// TestDashboard renders every section from real data: three emails sent
// and one refused for good by the SMTP peer, the purger's catch-up run;
// then retries the failed email from the page, after a cross-origin retry
// was refused.
func TestDashboard(t *testing.T) {
	b := setup(t)
	select {
	case o := <-b.runs:
		if o != purge.OutcomeSucceeded {
			t.Fatalf("catch-up purge run: %s", o)
		}
	case <-time.After(testTimeout):
		t.Fatal("the purger's catch-up run did not happen")
	}
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if r := b.signup(t, e); r.Outcome != mail.OutcomeSent {
			t.Fatalf("mail to %s: %s (%v)", e, r.Outcome, r.Err)
		}
	}
	b.smtp.FailNext(1, 550)
	failed := b.signup(t, "refused@example.com")
	if failed.Outcome != mail.OutcomeFailed {
		t.Fatalf("mail to refused@: %s, want failed", failed.Outcome)
	}

	res, page := b.get(t, "/")
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
	mustContain(t, "page", page, `<meta http-equiv="refresh" content="5; url=/">`)
	services := section(t, page, "services")
	mustContain(t, "services", services, `<th scope="row">mail</th>`, `<th scope="row">purge</th>`, `state-running`)
	if n := strings.Count(services, ">running<"); n != 2 {
		t.Errorf("%d services running, want 2:\n%s", n, services)
	}
	mustContain(t, "mail", section(t, page, "queue"),
		`<dd id="queue-depth">0 / 64</dd>`, `<dd id="outbox-sent">3</dd>`, `<dd id="outbox-failed">1</dd>`,
		`<dd id="outbox-pending">0</dd>`, `<dd id="oldest-pending">none</dd>`)
	chart := section(t, page, "chart")
	mustContain(t, "chart", chart, "<svg", "3 sent in the last 60 minutes", "3 sent this minute")
	if n := strings.Count(chart, `<rect class="bar"`); n != 60 {
		t.Errorf("chart has %d bars, want 60", n)
	}
	failures := section(t, page, "failures")
	retryPath := "/outbox/" + itoa(failed.ID) + "/retry"
	mustContain(t, "failures", failures, "refused@example.com", "550", `action="`+retryPath+`"`)
	purgeHTML := section(t, page, "purge")
	mustContain(t, "purge", purgeHTML, "scheduled", "ops-test", "unconfirmed 0", ">ok<", `<strong id="next-run">`)
	if strings.Contains(purgeHTML, `id="next-run">none`) {
		t.Error("no next purge run shown")
	}

	// A cross-origin POST is refused and changes nothing.
	if res := b.post(t, retryPath, "http://evil.example", "cross-site"); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin retry = %d, want 403", res.StatusCode)
	}
	if c, err := b.db.Outbox().Counts(t.Context()); err != nil || c.Failed != 1 {
		t.Fatalf("after a refused retry: %+v, %v; want 1 failed", c, err)
	}

	// The same-origin retry puts the row back to pending and queues it;
	// this time the peer takes it.
	res = b.post(t, retryPath, b.srv.URL, "same-origin")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/?retried=queued#failures" {
		t.Fatalf("retry = %d to %q, want 303 to /?retried=queued#failures", res.StatusCode, res.Header.Get("Location"))
	}
	if r := b.result(t); r.ID != failed.ID || r.Outcome != mail.OutcomeSent {
		t.Fatalf("retried mail: %+v, want row %d sent", r, failed.ID)
	}
	if msgs := b.smtp.MessagesTo("refused@example.com"); len(msgs) != 1 {
		t.Errorf("refused@ got %d messages after the retry, want 1", len(msgs))
	}
	_, page = b.get(t, "/?retried=queued")
	mustContain(t, "page after retry", page, "queued for sending", `<dd id="outbox-failed">0</dd>`, `<dd id="outbox-sent">4</dd>`, "No failed email.")

	// Retrying it again finds nothing failed.
	if res := b.post(t, retryPath, b.srv.URL, "same-origin"); res.Header.Get("Location") != "/?retried=gone#failures" {
		t.Errorf("second retry went to %q", res.Header.Get("Location"))
	}
	if res := b.post(t, "/outbox/nope/retry", b.srv.URL, "same-origin"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("retry of a bad id = %d, want 400", res.StatusCode)
	}

	// The same events, as metrics.
	_, metrics := b.get(t, "/metrics")
	mustContain(t, "metrics", metrics,
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

// TestOpsRoutes: pprof is mounted, the style sheet is served, a large body
// is refused.
func TestOpsRoutes(t *testing.T) {
	b := setup(t)
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
		"/ops.css":                       "svg .bar",
		"/metrics":                       "signup_mail_queue_capacity 64",
	} {
		res, body := b.get(t, path)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d, body lacks %q", path, res.StatusCode, want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, b.srv.URL+"/outbox/1/retry", strings.NewReader(strings.Repeat("x", 17<<10)))
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

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestDashboardWithoutDatabase: with the database gone, the page still
// renders what it knows (services, queue), marks the rest unavailable, and
// never shows the error itself; the log has it.
func TestDashboardWithoutDatabase(t *testing.T) {
	db := storetest.New(t)
	purger, err := purge.New(purge.Config{Store: db.Purges()})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	dash, err := ops.NewDashboard(ops.DashboardConfig{
		Services: func() []hosted.State {
			return []hosted.State{{Name: "mail", Status: hosted.StatusRunning, StartedAt: time.Now().Add(-90 * time.Second),
				Health: hosted.Degraded, HealthReason: "SMTP server refuses connections", HealthSince: time.Now().Add(-30 * time.Second)}}
		},
		Queue: hosted.NewQueue[mail.Job](8), Outbox: db.Outbox(), Purges: purger,
		Enqueue: func(int64) bool { return false }, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	dash.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	page := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d", rec.Code)
	}
	mustContain(t, "page", page, `<th scope="row">mail</th>`, "1m 30s", `<dd id="queue-depth">0 / 8</dd>`,
		`<span class="state health-degraded">degraded</span> <span class="reason">SMTP server refuses connections</span> <span class="since">for 30s</span>`,
		"The chart is unavailable", "The failures are unavailable", "The runs are unavailable")
	mustContain(t, "mail section", section(t, page, "queue"), "unavailable")
	if strings.Contains(page, "closed") || strings.Contains(page, "pool") {
		t.Errorf("the page shows an internal error:\n%s", page)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "dashboard: count outbox rows") {
		t.Errorf("the error was not logged:\n%s", logs.String())
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestSuppressionsOnTheDashboard: the dashboard lists suppressed addresses
// with their reply, and a same-origin POST takes one off the list.
func TestSuppressionsOnTheDashboard(t *testing.T) {
	b := setup(t)
	if _, err := b.db.Pool().Exec(t.Context(), `
		INSERT INTO mail_suppressions (address, reply, created_at)
		VALUES ('gone@example.com', '550 5.1.1 <gone@example.com>: User unknown', now())`); err != nil {
		t.Fatal(err)
	}
	_, page := b.get(t, "/")
	list := section(t, page, "suppressions")
	mustContain(t, "suppressions", list, "gone@example.com", "550 5.1.1", `action="/suppressions/remove"`, `name="address" value="gone@example.com"`)

	form := url.Values{"address": {"gone@example.com"}}
	if res := b.postForm(t, "/suppressions/remove", "http://evil.example", "cross-site", form); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin removal = %d, want 403", res.StatusCode)
	}
	if ss, err := b.db.Outbox().Suppressions(t.Context(), 10); err != nil || len(ss) != 1 {
		t.Fatalf("after a refused removal: %+v, %v", ss, err)
	}
	res := b.postForm(t, "/suppressions/remove", b.srv.URL, "same-origin", form)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/?unsuppressed=removed#suppressions" {
		t.Fatalf("removal = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if ss, err := b.db.Outbox().Suppressions(t.Context(), 10); err != nil || len(ss) != 0 {
		t.Errorf("after the removal: %+v, %v", ss, err)
	}
	_, page = b.get(t, "/?unsuppressed=removed")
	mustContain(t, "suppressions", section(t, page, "suppressions"), "No suppressed address.", "off the suppression list")
}
