package ops

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"signup/internal/hosted"
)

// statuses are every hosted.Status, for the service state metric.
var statuses = []hosted.Status{
	hosted.StatusPending, hosted.StatusStarting, hosted.StatusRunning, hosted.StatusRestarting,
	hosted.StatusStopping, hosted.StatusStopped, hosted.StatusFailed,
}

// healths are every hosted.Health, for the service health metric.
var healths = []hosted.Health{hosted.Healthy, hosted.Degraded, hosted.Unhealthy}

// scrapeCollector reads its metrics when scraped: the queue, the outbox by
// status, the last successful purge and the hosted services' states.
type scrapeCollector struct {
	cfg MetricsConfig
	log *slog.Logger

	queueLen, queueCap, outboxRows, lastPurge, serviceState, serviceHealth, serviceRestarts *prometheus.Desc
}

func newScrapeCollector(cfg MetricsConfig) *scrapeCollector {
	name := func(parts ...string) string { return prometheus.BuildFQName(namespace, parts[0], parts[1]) }
	return &scrapeCollector{
		cfg: cfg,
		log: cfg.Logger,
		queueLen: prometheus.NewDesc(name("mail", "queue_length"),
			"Mail jobs waiting in this instance's in-memory queue.", nil, nil),
		queueCap: prometheus.NewDesc(name("mail", "queue_capacity"),
			"Capacity of this instance's in-memory mail queue.", nil, nil),
		outboxRows: prometheus.NewDesc(name("outbox", "rows"),
			"Outbox rows by status, shared by every instance (read from the database at scrape: exact up to 1000 rows of a status, estimated from table statistics past that).", []string{"status"}, nil),
		lastPurge: prometheus.NewDesc(name("purge", "last_success_timestamp_seconds"),
			"When the last successful purge run of any instance finished, as a Unix time (read from the database at scrape).", nil, nil),
		serviceState: prometheus.NewDesc(name("service", "state"),
			"State of each hosted service: 1 for its current state, 0 for the others.", []string{"service", "state"}, nil),
		serviceHealth: prometheus.NewDesc(name("service", "health"),
			"Health of each hosted service (healthy, degraded, unhealthy): 1 for its current health, 0 for the others.", []string{"service", "health"}, nil),
		serviceRestarts: prometheus.NewDesc(name("service", "restarts_total"),
			"Restarts of each hosted service under its restart policy.", []string{"service"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queueLen, c.queueCap, c.outboxRows, c.lastPurge, c.serviceState, c.serviceHealth, c.serviceRestarts} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A failed query leaves its
// metrics out of this scrape and is logged.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	if q := c.cfg.Queue; q != nil {
		ch <- prometheus.MustNewConstMetric(c.queueLen, prometheus.GaugeValue, float64(q.Len()))
		ch <- prometheus.MustNewConstMetric(c.queueCap, prometheus.GaugeValue, float64(q.Cap()))
	}
	if c.cfg.Services != nil {
		for _, s := range c.cfg.Services() {
			for _, st := range statuses {
				v := 0.0
				if s.Status == st {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(c.serviceState, prometheus.GaugeValue, v, s.Name, st.String())
			}
			for _, hl := range healths {
				v := 0.0
				if s.Health == hl {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(c.serviceHealth, prometheus.GaugeValue, v, s.Name, hl.String())
			}
			ch <- prometheus.MustNewConstMetric(c.serviceRestarts, prometheus.CounterValue, float64(s.Restarts), s.Name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ScrapeTimeout)
	defer cancel()
	if c.cfg.Outbox != nil {
		counts, err := c.cfg.Outbox.StatusCounts(ctx)
		if err != nil {
			c.log.Warn("metrics: count outbox rows", "err", err)
		} else {
			for status, n := range map[string]int64{"pending": counts.Pending, "sending": counts.Sending, "sent": counts.Sent, "failed": counts.Failed, "suppressed": counts.Suppressed} {
				ch <- prometheus.MustNewConstMetric(c.outboxRows, prometheus.GaugeValue, float64(n), status)
			}
		}
	}
	if c.cfg.Purges != nil {
		last, ok, err := c.cfg.Purges.LastSuccess(ctx)
		switch {
		case err != nil:
			c.log.Warn("metrics: find last successful purge", "err", err)
		case ok:
			ch <- prometheus.MustNewConstMetric(c.lastPurge, prometheus.GaugeValue, float64(last.UnixNano())/float64(time.Second))
		}
	}
}
