package ops

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"signup/internal/account"
	"signup/internal/hosted"
	apphttp "signup/internal/http"
	"signup/internal/mail"
	"signup/internal/purge"
	"signup/internal/store"
)

// namespace prefixes every metric of the application.
const namespace = "signup"

// QueueGauge is the mail queue as metrics and the dashboard read it;
// *hosted.Queue implements it.
type QueueGauge interface {
	Len() int
	Cap() int
}

// OutboxCounter counts outbox rows by status, cheaply at any size (exact
// for small counts, estimated past them); *store.Outbox implements it.
type OutboxCounter interface {
	StatusCounts(ctx context.Context) (store.OutboxStatusCounts, error)
}

// PurgeHistory tells when the last successful purge finished, across
// instances; *store.Purges implements it.
type PurgeHistory interface {
	LastSuccess(ctx context.Context) (time.Time, bool, error)
}

// MetricsConfig is what Metrics read at scrape time. Every source is
// optional: a nil one leaves its metrics out.
type MetricsConfig struct {
	// Services returns the hosted services' states (host.States).
	Services func() []hosted.State
	// Queue is the mail queue, for its length and capacity.
	Queue QueueGauge
	// Outbox is counted by status at each scrape.
	Outbox OutboxCounter
	// Purges gives the last successful purge at each scrape.
	Purges PurgeHistory
	// ScrapeTimeout bounds the database queries of one scrape (default
	// 2s); a slow database costs a scrape those metrics, not the scrape.
	ScrapeTimeout time.Duration
	// Logger receives failed scrape queries. Default discards.
	Logger *slog.Logger
}

// Metrics are the application's Prometheus metrics. It implements the
// observer interfaces of the packages that emit events (account.Observer,
// mail.Observer, purge.Observer, http.RequestObserver), and collects the
// rest (queue, outbox, services, last purge) when scraped.
type Metrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	// served caches the request series by label values (servedKey to
	// *servedSeries): looking them up in the vectors hashes the labels on
	// every request. Routes, methods and statuses are few, so it stays small.
	served        sync.Map
	signups       prometheus.Counter
	confirmations prometheus.Counter
	signIns       prometheus.Counter
	queueWait     prometheus.Histogram
	emailsSent    *prometheus.CounterVec
	emailsRetried *prometheus.CounterVec
	emailsFailed  *prometheus.CounterVec
	sendDuration  *prometheus.HistogramVec
	suppressed    prometheus.Counter
	senderBlocked prometheus.Gauge
	purgeRuns     *prometheus.CounterVec
	purgeRows     *prometheus.CounterVec
}

var (
	_ account.Observer        = (*Metrics)(nil)
	_ mail.Observer           = (*Metrics)(nil)
	_ purge.Observer          = (*Metrics)(nil)
	_ apphttp.RequestObserver = (*Metrics)(nil)
	_ prometheus.Collector    = (*scrapeCollector)(nil)
	_ QueueGauge              = (*hosted.Queue[mail.Job])(nil)
	_ OutboxCounter           = (*store.Outbox)(nil)
	_ PurgeHistory            = (*store.Purges)(nil)
	_ OutboxStatus            = (*store.Outbox)(nil)
	_ PurgeStatus             = (*purge.Purger)(nil)
)

// NewMetrics creates the metrics and registers them, with a collector for
// cfg's sources, on reg: a registry of the application's own, never the
// global default one.
func NewMetrics(reg prometheus.Registerer, cfg MetricsConfig) (*Metrics, error) {
	if cfg.ScrapeTimeout <= 0 {
		cfg.ScrapeTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served by the site, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve an HTTP request of the site, by route pattern and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		signups: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "signups_total",
			Help: "Signups committed (a taken address included: its owner is told by email).",
		}),
		confirmations: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "confirmations_total",
			Help: "Email addresses confirmed.",
		}),
		signIns: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "sign_ins_total",
			Help: "Successful sign-ins.",
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "mail", Name: "queue_wait_seconds",
			Help:    "Time a mail job waited in the in-memory queue before a worker took it.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60},
		}),
		emailsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "emails_sent_total",
			Help: "Emails the SMTP server accepted, by kind.",
		}, []string{"kind"}),
		emailsRetried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "emails_retried_total",
			Help: "Email attempts that failed temporarily and were scheduled again, by kind.",
		}, []string{"kind"}),
		emailsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "emails_failed_total",
			Help: "Emails marked failed for good (a permanent rejection, or older than MAIL_MAX_AGE), by kind.",
		}, []string{"kind"}),
		sendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "email_send_duration_seconds",
			Help:    "Time of one email attempt (render and SMTP), by kind.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "mail", Name: "suppressed_total",
			Help: "Addresses put on the suppression list after a permanent rejection of the recipient.",
		}),
		senderBlocked: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "mail", Name: "sender_blocked",
			Help: "1 while the mail sender is blocked: the SMTP server refuses us, not the messages.",
		}),
		purgeRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "purge", Name: "runs_total",
			Help: "Purge attempts of this instance, by outcome (busy and served: another instance had it).",
		}, []string{"outcome"}),
		purgeRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "purge", Name: "rows_total",
			Help: "Rows purged by this instance's runs, by category (warned: dormancy warnings queued).",
		}, []string{"category"}),
	}
	// Known label values start at zero, so rates work from the first scrape.
	for _, k := range account.MailKinds() {
		m.emailsSent.WithLabelValues(string(k))
		m.emailsRetried.WithLabelValues(string(k))
		m.emailsFailed.WithLabelValues(string(k))
	}
	for _, o := range []purge.Outcome{purge.OutcomeSucceeded, purge.OutcomeFailed, purge.OutcomeInterrupted, purge.OutcomeBusy, purge.OutcomeServed} {
		m.purgeRuns.WithLabelValues(string(o))
	}
	for _, c := range purge.Categories {
		m.purgeRows.WithLabelValues(string(c))
	}
	cs := []prometheus.Collector{
		m.requests, m.requestDuration, m.signups, m.confirmations, m.signIns, m.queueWait,
		m.emailsSent, m.emailsRetried, m.emailsFailed, m.sendDuration, m.suppressed, m.senderBlocked, m.purgeRuns, m.purgeRows,
		newScrapeCollector(cfg),
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Served implements http.RequestObserver.
func (m *Metrics) Served(route, method string, status int, took time.Duration) {
	key := servedKey{route: route, method: knownMethod(method), status: status}
	v, ok := m.served.Load(key)
	if !ok {
		v, _ = m.served.LoadOrStore(key, &servedSeries{
			requests: m.requests.WithLabelValues(key.route, key.method, strconv.Itoa(status)),
			duration: m.requestDuration.WithLabelValues(key.route, key.method),
		})
	}
	series := v.(*servedSeries)
	series.requests.Inc()
	series.duration.Observe(took.Seconds())
}

// servedKey and servedSeries are an entry of Metrics.served.
type servedKey struct {
	route, method string
	status        int
}

type servedSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// knownMethod keeps the method label bounded: anything unusual is "other".
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// SignedUp implements account.Observer.
func (m *Metrics) SignedUp(account.SignupResult) { m.signups.Inc() }

// Confirmed implements account.Observer.
func (m *Metrics) Confirmed() { m.confirmations.Inc() }

// SignedIn implements account.Observer.
func (m *Metrics) SignedIn() { m.signIns.Inc() }

// Dequeued implements mail.Observer.
func (m *Metrics) Dequeued(wait time.Duration) { m.queueWait.Observe(wait.Seconds()) }

// Attempted implements mail.Observer. An attempt cut short by a shutdown
// is not counted: it is given back, and made again.
func (m *Metrics) Attempted(kind account.MailKind, outcome mail.Outcome, took time.Duration) {
	k := string(kind)
	switch outcome {
	case mail.OutcomeSent:
		m.emailsSent.WithLabelValues(k).Inc()
	case mail.OutcomeRetry:
		m.emailsRetried.WithLabelValues(k).Inc()
	case mail.OutcomeFailed:
		m.emailsFailed.WithLabelValues(k).Inc()
	default:
		return
	}
	m.sendDuration.WithLabelValues(k).Observe(took.Seconds())
}

// Blocked implements mail.Observer.
func (m *Metrics) Blocked(blocked bool, _ string) {
	if blocked {
		m.senderBlocked.Set(1)
	} else {
		m.senderBlocked.Set(0)
	}
}

// Suppressed implements mail.Observer.
func (m *Metrics) Suppressed() { m.suppressed.Inc() }

// Ran implements purge.Observer. Rows count for real runs only, a failed
// or interrupted one included: what its batches committed is gone.
func (m *Metrics) Ran(outcome purge.Outcome, rep purge.Report) {
	m.purgeRuns.WithLabelValues(string(outcome)).Inc()
	if rep.DryRun || rep.ID == 0 {
		return
	}
	for _, c := range purge.Categories {
		if n := rep.Counts.Get(c); n > 0 {
			m.purgeRows.WithLabelValues(string(c)).Add(float64(n))
		}
	}
}
