package ops_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	"signup/internal/pagetest"
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

// get fetches path from the ops listener.

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
	pagetest.MustContain(t, "page", page, `<th scope="row">mail</th>`, "1m 30s", `<dd id="queue-depth">0 / 8</dd>`,
		`<span class="state health-degraded">degraded</span> <span class="reason">SMTP server refuses connections</span> <span class="since">for 30s</span>`,
		"The chart is unavailable", "The failures are unavailable", "The runs are unavailable")
	pagetest.MustContain(t, "mail section", pagetest.Section(t, page, "queue"), "unavailable")
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
	_, page := pagetest.Get(t, b.srv.URL+"/")
	list := pagetest.Section(t, page, "suppressions")
	pagetest.MustContain(t, "suppressions", list, "gone@example.com", "550 5.1.1", `action="/suppressions/remove"`, `name="address" value="gone@example.com"`)

	form := url.Values{"address": {"gone@example.com"}}
	if res := pagetest.PostForm(t, b.srv.URL+"/suppressions/remove", "http://evil.example", "cross-site", form); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin removal = %d, want 403", res.StatusCode)
	}
	if ss, err := b.db.Outbox().Suppressions(t.Context(), 10); err != nil || len(ss) != 1 {
		t.Fatalf("after a refused removal: %+v, %v", ss, err)
	}
	res := pagetest.PostForm(t, b.srv.URL+"/suppressions/remove", b.srv.URL, "same-origin", form)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/?unsuppressed=removed#suppressions" {
		t.Fatalf("removal = %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if ss, err := b.db.Outbox().Suppressions(t.Context(), 10); err != nil || len(ss) != 0 {
		t.Errorf("after the removal: %+v, %v", ss, err)
	}
	_, page = pagetest.Get(t, b.srv.URL+"/?unsuppressed=removed")
	pagetest.MustContain(t, "suppressions", pagetest.Section(t, page, "suppressions"), "No suppressed address.", "off the suppression list")
}
