package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"signup/internal/hosted"
	"signup/internal/purge"
	"signup/internal/store"
)

// OutboxStatus is what the dashboard reads from the outbox and the retry
// it asks of it; *store.Outbox implements it.
type OutboxStatus interface {
	OutboxCounter
	OldestPending(ctx context.Context) (t time.Time, ok, atLeast bool, err error)
	Failures(ctx context.Context, n int) ([]store.OutboxFailure, error)
	SentPerMinute(ctx context.Context, from, to time.Time) ([]int64, error)
	RetryFailed(ctx context.Context, id int64, now time.Time) error
	Suppressions(ctx context.Context, n int) ([]store.Suppression, error)
	Unsuppress(ctx context.Context, address string) (bool, error)
}

// PurgeStatus is what the dashboard shows of the purger; *purge.Purger
// implements it.
type PurgeStatus interface {
	NextRun() time.Time
	LastRuns(ctx context.Context, n int) ([]purge.Report, error)
}

// DashboardConfig is what the status dashboard reads.
type DashboardConfig struct {
	// Services returns the hosted services' states (host.States). Required.
	Services func() []hosted.State
	// Queue is the mail queue. Required.
	Queue QueueGauge
	// Outbox is read for counts, failures and sends per minute. Required.
	Outbox OutboxStatus
	// Purges gives the last runs and the next one. Required.
	Purges PurgeStatus
	// Enqueue offers a retried outbox row to the sender's queue; false
	// means the queue is full, and the sweep will find the row instead.
	// Required.
	Enqueue func(outboxID int64) bool
	// Sender tells whether the mail sender is blocked, with the server's
	// reply and since when (mail.Sender.Blocked). Optional.
	Sender func() (blocked bool, reply string, since time.Time)
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// QueryTimeout bounds the database reads of one page (default 3s).
	QueryTimeout time.Duration
	// Logger receives errors, which the page never shows. Default discards.
	Logger *slog.Logger
}

// Dashboard is the status page: server-rendered, refreshing itself, no
// scripts.
type Dashboard struct {
	cfg  DashboardConfig
	log  *slog.Logger
	tmpl *template.Template
	// signOut shows the sign-out button: the handler requires a token.
	signOut bool
}

// Sizes of the dashboard's lists.
const (
	failuresShown  = 20
	suppressShown  = 50
	purgeRunsShown = 10
	chartMinutes   = 60
)

// NewDashboard checks cfg and parses the page's template.
func NewDashboard(cfg DashboardConfig) (*Dashboard, error) {
	if cfg.Services == nil || cfg.Queue == nil || cfg.Outbox == nil || cfg.Purges == nil || cfg.Enqueue == nil {
		return nil, errors.New("ops: dashboard needs Services, Queue, Outbox, Purges and Enqueue")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"age":  age,
		"add":  func(a, b int) int { return a + b },
		"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	}).ParseFS(assets, "templates/dashboard.html")
	if err != nil {
		return nil, fmt.Errorf("ops: parse dashboard template: %w", err)
	}
	return &Dashboard{cfg: cfg, log: cfg.Logger, tmpl: tmpl}, nil
}

// status is what the template shows. A section whose data could not be
// read has its Err flag set and says so, without the reason.
type status struct {
	Now      time.Time
	SignOut  bool
	Services []serviceRow
	Queue    struct{ Len, Cap int }

	Outbox        store.OutboxStatusCounts
	OutboxErr     bool
	OldestPending time.Duration
	HasPending    bool
	OldestAtLeast bool // OldestPending is a lower bound
	Failures      []store.OutboxFailure
	FailuresErr   bool
	Retried       string // what the last retry did, from the redirect

	Blocked      bool
	BlockedReply string
	BlockedFor   time.Duration

	Suppressions    []store.Suppression
	SuppressionsErr bool
	Unsuppressed    string // what the last removal did, from the redirect

	Chart    chart
	ChartErr bool

	Runs    []purgeRow
	RunsErr bool
	NextRun time.Time
}

// serviceRow is one hosted service on the page.
type serviceRow struct {
	Name, Status string
	Running      bool
	Uptime       time.Duration
	Restarts     int
	LastError    string
	// Health is healthy, degraded or unhealthy; HealthReason says why and
	// HealthFor how long.
	Health       string
	HealthReason string
	HealthFor    time.Duration
}

// purgeRow is one purge run on the page.
type purgeRow struct {
	purge.Report
	Kind     string // purge.Report.Kind: scheduled, caught up, manual, dry run
	Duration time.Duration
	Running  bool
	Counts   []categoryCount
}

// categoryCount is one category's count of a run.
type categoryCount struct {
	Category string
	N        int64
}

// ServeHTTP renders the page.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := d.gather(r.Context())
	switch r.URL.Query().Get("retried") {
	case "queued":
		st.Retried = "The email is pending again and was queued for sending."
	case "pending":
		st.Retried = "The email is pending again; the sender's next sweep will pick it up."
	case "gone":
		st.Retried = "That email is no longer failed: it was retried already, or purged."
	case "error":
		st.Retried = "The retry could not be recorded; see the log. Nothing was changed."
	}
	switch r.URL.Query().Get("unsuppressed") {
	case "removed":
		st.Unsuppressed = "The address is off the suppression list: mail to it is sent again."
	case "gone":
		st.Unsuppressed = "That address was not on the suppression list."
	case "error":
		st.Unsuppressed = "The removal could not be recorded; see the log. Nothing was changed."
	}
	var buf bytes.Buffer
	if err := d.tmpl.ExecuteTemplate(&buf, "dashboard", st); err != nil {
		d.log.Error("dashboard: render", "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.Write(buf.Bytes()) //nolint:errcheck // the client went away
}

// gather reads everything the page shows; a failed read is logged and
// marks its section.
func (d *Dashboard) gather(ctx context.Context) status {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.QueryTimeout)
	defer cancel()
	now := d.cfg.Now()
	st := status{Now: now, NextRun: d.cfg.Purges.NextRun(), SignOut: d.signOut}
	for _, s := range d.cfg.Services() {
		row := serviceRow{Name: s.Name, Status: s.Status.String(), Restarts: s.Restarts, Running: s.Status == hosted.StatusRunning,
			Health: s.Health.String(), HealthReason: s.HealthReason, HealthFor: now.Sub(s.HealthSince)}
		if row.Running && !s.StartedAt.IsZero() {
			row.Uptime = now.Sub(s.StartedAt)
		}
		if s.LastError != nil {
			// A service's own error, meant for operators: it names no secret
			// (the services redact URLs) and this page is not public.
			row.LastError = s.LastError.Error()
		}
		st.Services = append(st.Services, row)
	}
	st.Queue.Len, st.Queue.Cap = d.cfg.Queue.Len(), d.cfg.Queue.Cap()
	if d.cfg.Sender != nil {
		var since time.Time
		st.Blocked, st.BlockedReply, since = d.cfg.Sender()
		st.BlockedFor = now.Sub(since)
	}

	var err error
	logErr := func(what string, err error) bool {
		if err != nil {
			d.log.Error("dashboard: "+what, "err", err)
			return true
		}
		return false
	}
	st.Outbox, err = d.cfg.Outbox.StatusCounts(ctx)
	st.OutboxErr = logErr("count outbox rows", err)
	if !st.OutboxErr {
		var oldest time.Time
		oldest, st.HasPending, st.OldestAtLeast, err = d.cfg.Outbox.OldestPending(ctx)
		st.OutboxErr = logErr("find oldest pending row", err)
		st.OldestPending = now.Sub(oldest)
	}
	st.Failures, err = d.cfg.Outbox.Failures(ctx, failuresShown)
	st.FailuresErr = logErr("list failed rows", err)

	st.Suppressions, err = d.cfg.Outbox.Suppressions(ctx, suppressShown)
	st.SuppressionsErr = logErr("list suppressions", err)

	counts, err := d.cfg.Outbox.SentPerMinute(ctx, now.Add(-(chartMinutes-1)*time.Minute), now)
	st.ChartErr = logErr("count sent mail per minute", err)
	st.Chart = newChart(counts)

	runs, err := d.cfg.Purges.LastRuns(ctx, purgeRunsShown)
	st.RunsErr = logErr("list purge runs", err)
	for _, r := range runs {
		row := purgeRow{Report: r, Kind: r.Kind(), Running: r.FinishedAt.IsZero()}
		if !row.Running {
			row.Duration = r.FinishedAt.Sub(r.StartedAt)
		}
		for _, c := range purge.Categories {
			row.Counts = append(row.Counts, categoryCount{Category: string(c), N: r.Counts.Get(c)})
		}
		st.Runs = append(st.Runs, row)
	}
	return st
}

// retry puts a failed row back to pending and offers it to the queue,
// then sends the browser back to the page with the outcome.
func (d *Dashboard) retry(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "Bad Request: no such outbox row", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.QueryTimeout)
	defer cancel()
	outcome := "queued"
	err = d.cfg.Outbox.RetryFailed(ctx, id, d.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFailed):
		outcome = "gone"
	case err != nil:
		d.log.Error("dashboard: retry failed email", "outbox_id", id, "err", err)
		outcome = "error"
	case !d.cfg.Enqueue(id):
		outcome = "pending"
	default:
		d.log.Info("dashboard: failed email queued again", "outbox_id", id)
	}
	http.Redirect(w, r, "/?retried="+outcome+"#failures", http.StatusSeeOther)
}

// unsuppress takes the form's address off the suppression list, then
// sends the browser back to the page with the outcome.
func (d *Dashboard) unsuppress(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	address := r.PostFormValue("address")
	if address == "" || len(address) > 254 {
		http.Error(w, "Bad Request: no address", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.QueryTimeout)
	defer cancel()
	outcome := "removed"
	ok, err := d.cfg.Outbox.Unsuppress(ctx, address)
	switch {
	case err != nil:
		d.log.Error("dashboard: remove suppression", "err", err)
		outcome = "error"
	case !ok:
		outcome = "gone"
	default:
		d.log.Info("dashboard: address taken off the suppression list")
	}
	http.Redirect(w, r, "/?unsuppressed="+outcome+"#suppressions", http.StatusSeeOther)
}

// age formats a duration for people: 3s, 4m 05s, 2h 10m, 3d 4h.
func age(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}
