package faults_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/devmail"
	"signup/internal/e2e"
	"signup/internal/store"
	"signup/internal/waitfor"
)

// password is what every signup of the suite uses.
const password = "a long and unusual passphrase"

// startMail starts a devmail SMTP peer with faults, stopped when t ends.
func startMail(t *testing.T, f devmail.Faults) *devmail.Server {
	t.Helper()
	srv := devmail.New(devmail.Config{})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("start devmail: %v", err)
	}
	srv.SetFaults(f)
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv
}

// webEnv is the environment of a web process on dbURL sending through
// mail, with rate limits off (the load comes from one address) and a short
// mail retry backoff, plus extra key-value pairs.
func webEnv(dbURL string, mail *devmail.Server, extra ...string) map[string]string {
	env := map[string]string{
		"DATABASE_URL":   dbURL,
		"SMTP_URL":       mail.SMTPURL(),
		"RATE_LIMIT":     "off",
		"MAIL_RETRY_MIN": "250ms",
		"MAIL_RETRY_MAX": "2s",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// freeAddr returns a 127.0.0.1 address nothing listens on now, for a
// process that must keep its address across restarts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// signupForm is the form of a signup for email.
func signupForm(email string) url.Values {
	return url.Values{"email": {email}, "password": {password}}
}

// confirmations counts, per recipient, the messages that carry a
// confirmation link.
func confirmations(msgs []devmail.Message) map[string]int {
	per := map[string]int{}
	for _, m := range msgs {
		if !slices.ContainsFunc(m.Links, func(l string) bool { return strings.Contains(l, "/confirm?token=") }) {
			continue
		}
		for _, to := range m.To {
			per[strings.ToLower(to)]++
		}
	}
	return per
}

// delivery is what arrived for a set of addresses.
type delivery struct {
	// per counts confirmations per address (of every address, wanted or
	// not).
	per map[string]int
	// missing are the wanted addresses without a confirmation: lost mail.
	missing []string
	// duplicates counts confirmations beyond the first, over the wanted
	// addresses.
	duplicates int
}

// waitConfirmations waits until every address in want has a confirmation,
// or timeout passes, and says what arrived. It does not fail the test: the
// caller logs the figures first.
func waitConfirmations(t *testing.T, srv *devmail.Server, want []string, timeout time.Duration) delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	target := int64(len(want))
	for {
		// Waiting on the count copies nothing per arrival; the messages
		// are read only once enough have come.
		err := srv.WaitReceived(ctx, target)
		// Count before reading: a message arriving in between is then
		// beyond the count, and the next wait returns at once for it.
		seen := srv.Received()
		d := delivery{per: confirmations(srv.Messages())}
		for _, w := range want {
			switch n := d.per[w]; {
			case n == 0:
				d.missing = append(d.missing, w)
			case n > 1:
				d.duplicates += n - 1
			}
		}
		if len(d.missing) == 0 || err != nil {
			return d
		}
		target = seen + 1
	}
}

// requireNoneLost fails t for each wanted address without a confirmation
// and for each outbox row failed for good: what a fault test must never
// leave behind.
func (d delivery) requireNoneLost(t *testing.T, counts store.OutboxCounts) {
	t.Helper()
	if len(d.missing) > 0 {
		t.Errorf("%d committed signups got no confirmation: %v", len(d.missing), d.missing[:min(5, len(d.missing))])
	}
	if counts.Failed != 0 {
		t.Errorf("%d outbox rows failed for good", counts.Failed)
	}
}

// openDB opens the database at dbURL for the test's own queries, closed
// when t ends.
func openDB(t *testing.T, dbURL string) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, dbURL, store.Options{MaxConns: 2})
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// accountEmails is every account's address, lower case.
func accountEmails(t *testing.T, db *store.DB) []string {
	t.Helper()
	rows, err := db.Pool().Query(t.Context(), `SELECT lower(email) FROM accounts ORDER BY id`)
	if err != nil {
		t.Fatalf("list accounts: %v", err)
	}
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			t.Fatalf("list accounts: %v", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list accounts: %v", err)
	}
	return out
}

// tableCounts is the number of rows in each table of the public schema.
func tableCounts(t *testing.T, db *store.DB) map[string]int64 {
	t.Helper()
	ctx := t.Context()
	rows, err := db.Pool().Query(ctx, `
		SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatalf("list tables: %v", err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	counts := make(map[string]int64, len(tables))
	for _, name := range tables {
		var n int64
		if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{name}.Sanitize()).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", name, err)
		}
		counts[name] = n
	}
	return counts
}

// waitOutboxSettled waits until no outbox row is pending or being sent and
// returns the counts; it fails the test after timeout. Nothing signals a
// row settling outside the process, so it polls.
func waitOutboxSettled(t *testing.T, db *store.DB, timeout time.Duration) store.OutboxCounts {
	t.Helper()
	var c store.OutboxCounts
	waitfor.Until(t, timeout, func() error {
		var err error
		if c, err = db.Outbox().Counts(t.Context()); err != nil {
			return fmt.Errorf("count outbox rows: %w", err)
		}
		if c.Pending != 0 || c.Sending != 0 {
			return fmt.Errorf("outbox not settled: %+v", c)
		}
		return nil
	})
	return c
}

// latencies summarises request durations.
type latencies []time.Duration

func (l latencies) percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func (l latencies) String() string {
	return fmt.Sprintf("p50 %v, p99 %v, max %v", l.percentile(0.5).Round(time.Millisecond),
		l.percentile(0.99).Round(time.Millisecond), l.percentile(1).Round(time.Millisecond))
}

// outcome is one request's answer.
type outcome struct {
	email  string
	status int // 0 when the request failed without an answer
	err    error
	start  time.Time
	took   time.Duration
}

// peakInFlight is the most requests of outs that were in flight at once:
// each holds a goroutine or more in the server while it lasts.
func peakInFlight(outs []outcome) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, o := range outs {
		edges = append(edges, edge{o.start, 1}, edge{o.start.Add(o.took), -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // ends before starts at the same instant
	})
	n, peak := 0, 0
	for _, e := range edges {
		n += e.delta
		peak = max(peak, n)
	}
	return peak
}

// tally counts outcomes by status ("error" for no answer).
func tally(outs []outcome) string {
	counts := map[string]int{}
	for _, o := range outs {
		k := fmt.Sprint(o.status)
		if o.err != nil {
			k = "error"
		}
		counts[k]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

// pacedSignups posts signups at a constant arrival rate, each in its own
// goroutine, for duration, whatever the answers take (an open load: a slow
// server cannot slow the arrivals down and hide its slowness). Emails are
// prefix0000@example.com, prefix0001…; it returns every outcome once all
// requests have ended.
func pacedSignups(ctx context.Context, c *e2e.Client, base, prefix string, perSecond int, duration time.Duration) []outcome {
	n := int(duration.Seconds() * float64(perSecond))
	outs := make([]outcome, n)
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	var wg sync.WaitGroup
	sent := 0
	for ; sent < n; sent++ {
		if sent > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		i := sent
		wg.Go(func() {
			email := fmt.Sprintf("%s%04d@example.com", prefix, i)
			start := time.Now()
			status, err := c.PostForm(base, "/signup", signupForm(email))
			outs[i] = outcome{email: email, status: status, err: err, start: start, took: time.Since(start)}
		})
	}
	wg.Wait()
	return outs[:sent]
}

// answered returns the emails whose signup got the 303 that promises mail.
func answered(outs []outcome) []string {
	var out []string
	for _, o := range outs {
		if o.err == nil && o.status == 303 {
			out = append(out, o.email)
		}
	}
	return out
}

// union is the sorted set of the addresses in lists.
func union(lists ...[]string) []string {
	set := map[string]bool{}
	for _, l := range lists {
		for _, e := range l {
			set[e] = true
		}
	}
	out := slices.Collect(maps.Keys(set))
	sort.Strings(out)
	return out
}
