package main

import (
	"context"
	"strings"
	"time"
)

// scenario is one row of the table: how to measure the product and its
// baseline once, and the goal their ratio is judged against.
type scenario struct {
	// name labels the row; -only matches it.
	name string
	// unit and baseUnit name what value and baseline count.
	unit, baseUnit string
	// goal judges the medians; nil for a row that only reports.
	goal *goal
	// note says how the row is measured, under the table.
	note string
	// pending, when set, says why the row is not measured yet.
	pending string
	// measure takes one run's figures.
	measure func(ctx context.Context, h *harness) (measurement, error)
}

func (sc *scenario) matches(only []string) bool {
	if len(only) == 0 {
		return true
	}
	name := strings.ToLower(sc.name)
	for _, s := range only {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// measurement is one run of a scenario.
type measurement struct {
	value, baseline float64
	// detail is more of the run's figures, for the per-run list.
	detail string
	// short, when set, says why this run misses the row's goal whatever
	// its figures (a burst whose tail was refused, say).
	short string
}

func (m measurement) ratio() float64 { return m.value / m.baseline }

// goal is what a row must reach: on the median ratio, or on the median
// value when onValue is set.
type goal struct {
	// text is how the goal is printed, e.g. "ratio ≥ 0.9".
	text    string
	onValue bool
	// atLeast is true for a lower bound (≥), false for an upper one (≤, <).
	atLeast bool
	limit   float64
}

func (g *goal) met(value, ratio float64) bool {
	x := ratio
	if g.onValue {
		x = value
	}
	if g.atLeast {
		return x >= g.limit
	}
	return x <= g.limit
}

// sizes are the loads and data sets, full or -quick.
type sizes struct {
	hashFor       time.Duration // baseline: argon2id on every core
	saturateFor   time.Duration // signups at saturation
	slowSMTPRate  int           // signups/s while the SMTP peer is slow
	slowSMTPFor   time.Duration // at least 300 answers, so that p99 is not just the maximum
	backlog       int           // pending emails to drain
	purgeAccounts int           // purge-eligible accounts
	purgeLoadRate int           // signups/s during the purge
	pageFor       time.Duration // GET /signup at saturation, each side
	starts        int           // process starts per run
	concurrent    int           // simultaneous signups for peak RSS
	outboxRows    int           // outbox rows under the ops scrape and dashboard
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{
			hashFor: time.Second, saturateFor: 2 * time.Second,
			slowSMTPRate: 10, slowSMTPFor: 2 * time.Second,
			backlog: 500, purgeAccounts: 20_000, purgeLoadRate: 10,
			pageFor: time.Second, starts: 2, concurrent: 50, outboxRows: 200_000,
		}
	}
	return sizes{
		hashFor: 5 * time.Second, saturateFor: 10 * time.Second,
		slowSMTPRate: 10, slowSMTPFor: 30 * time.Second,
		backlog: 20_000, purgeAccounts: 1_000_000, purgeLoadRate: 10,
		pageFor: 5 * time.Second, starts: 5, concurrent: 500, outboxRows: 10_000_000,
	}
}

// scenarios lists every row in the order of the table.
func scenarios(sz sizes) []*scenario {
	return []*scenario{
		signupThroughput(sz),
		slowSMTPLatency(sz),
		backlogDrain(sz),
		drainVersusRiver(sz),
		drainPGCPU(sz),
		purgeDuration(sz),
		purgeLatency(sz),
		signupPage(sz),
		startup(sz),
		peakRSS(sz),
		opsStatus(sz),
	}
}
