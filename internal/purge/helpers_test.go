package purge_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"signup/internal/purge"
	"signup/internal/store"
	"signup/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is when the tests' clocks start: a Wednesday, 12:00 UTC.
var t0 = time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

// Policy durations of the tests (the defaults, spelled out).
const (
	unconfirmedRetention = 168 * time.Hour
	inactiveRetention    = 8760 * time.Hour
	inactiveWarning      = 168 * time.Hour
	day                  = 24 * time.Hour
)

// clock is a fake clock: Now reads it, After waits on it, Advance moves it.
type clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	changed chan struct{} // closed and replaced when a waiter is added
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newClock(now time.Time) *clock { return &clock{now: now, changed: make(chan struct{})} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Advance moves the clock by d and fires the waiters that are due.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// AdvanceTo moves the clock to at.
func (c *clock) AdvanceTo(at time.Time) { c.Advance(at.Sub(c.Now())) }

// WaitWaiters returns once n waiters are waiting: for a purger, that it has
// handled its last tick and waits for the next.
func (c *clock) WaitWaiters(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		got, changed := len(c.waiters), c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%d waiters on the clock after 20s, want %d", got, n)
		}
	}
}

// bundle is what setup returns besides the purger.
type bundle struct {
	db    *store.DB
	url   string
	clock *clock
}

// setup returns a purger on a fresh database with a fake clock at t0, the
// default policy, and cfg's non-zero fields on top.
func setup(t *testing.T, cfg purge.Config) (*purge.Purger, *bundle) {
	t.Helper()
	t.Parallel()
	url := storetest.URL(t)
	db, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	b := &bundle{db: db, url: url, clock: newClock(t0)}
	return newPurger(t, b, db, cfg), b
}

// newPurger builds a purger over db with b's clock.
func newPurger(t *testing.T, b *bundle, db *store.DB, cfg purge.Config) *purge.Purger {
	t.Helper()
	cfg.Store = db.Purges()
	cfg.Now, cfg.After = b.clock.Now, b.clock.After
	if cfg.Instance == "" {
		cfg.Instance = "test"
	}
	p, err := purge.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runOnce runs a manual purge and fails the test on error.
func runOnce(t *testing.T, p *purge.Purger, opts purge.Options) purge.Counts {
	t.Helper()
	rep, err := p.RunOnce(t.Context(), opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep.Counts
}

// account describes an account fixture; zero times are NULL.
type account struct {
	created, confirmed, seen, warned time.Time
}

var emails atomic.Int64

func nullable(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// addAccount inserts a and returns its id.
func (b *bundle) addAccount(t *testing.T, a account) int64 {
	t.Helper()
	var id int64
	err := b.db.Pool().QueryRow(t.Context(), `
		INSERT INTO accounts (email, password_hash, created_at, confirmed_at, last_seen_at, warned_at)
		VALUES ($1, 'x', $2, $3, $4, $5) RETURNING id`,
		fmt.Sprintf("a%d@example.test", emails.Add(1)), a.created,
		nullable(a.confirmed), nullable(a.seen), nullable(a.warned)).Scan(&id)
	if err != nil {
		t.Fatalf("add account: %v", err)
	}
	return id
}

// confirmed is an account confirmed at signup and last seen at seen.
func confirmed(seen time.Time) account {
	return account{created: seen.Add(-day), confirmed: seen.Add(-day), seen: seen}
}

// addMail queues an email of kind for account id, in status, created at at
// (and sent then, when status is sent); it returns the row id.
func (b *bundle) addMail(t *testing.T, id int64, kind, status string, at time.Time) int64 {
	t.Helper()
	var sent *time.Time
	if status == "sent" {
		sent = &at
	}
	var mail int64
	err := b.db.Pool().QueryRow(t.Context(), `
		INSERT INTO outbox (account_id, kind, status, created_at, next_attempt_at, sent_at, attempts)
		VALUES ($1, $2, $3, $4, $4, $5, CASE WHEN $3 = 'pending' THEN 0 ELSE 1 END) RETURNING id`,
		id, kind, status, at, sent).Scan(&mail)
	if err != nil {
		t.Fatalf("add mail: %v", err)
	}
	return mail
}

var hashes atomic.Int64

// hash returns a fresh 32-byte value for a token or session.
func hash() []byte {
	return []byte(fmt.Sprintf("%032d", hashes.Add(1)))
}

// addToken adds a confirmation token expiring at expires, used at used
// (zero: unused), and returns its hash.
func (b *bundle) addToken(t *testing.T, id int64, expires, used time.Time) []byte {
	t.Helper()
	h := hash()
	b.exec(t, `INSERT INTO tokens (hash, account_id, purpose, created_at, expires_at, used_at)
		VALUES ($1, $2, 'confirm', $3, $4, $5)`, h, id, expires.Add(-day), expires, nullable(used))
	return h
}

// addSession adds a session with these expiries and returns its hash.
func (b *bundle) addSession(t *testing.T, id int64, expires, absolute time.Time) []byte {
	t.Helper()
	h := hash()
	b.exec(t, `INSERT INTO sessions (hash, account_id, created_at, last_used_at, expires_at, absolute_expires_at)
		VALUES ($1, $2, $3, $3, $4, $5)`, h, id, absolute.Add(-30*day), expires, absolute)
	return h
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.db.Pool().Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := b.db.Pool().QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// exists reports whether a row of table has key.
func (b *bundle) exists(t *testing.T, table, col string, key any) bool {
	t.Helper()
	return b.count(t, `SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, key) > 0
}

// accountExists reports whether account id is still there.
func (b *bundle) accountExists(t *testing.T, id int64) bool {
	t.Helper()
	return b.exists(t, "accounts", "id", id)
}

// historyInstance is the instance of the run ranBefore records.
const historyInstance = "history"

// ranBefore records a manual run a week before t0: the purge ran on this
// database before today's tick, so a start at t0 catches that tick up (on a
// fresh database it would be from before the first start, and not missed).
// runs leaves it out.
func (b *bundle) ranBefore(t *testing.T) {
	t.Helper()
	at := t0.Add(-7 * day)
	rep := purge.Report{Instance: historyInstance, StartedAt: at}
	id, err := b.db.Purges().StartRun(t.Context(), rep)
	if err != nil {
		t.Fatal(err)
	}
	rep.ID, rep.FinishedAt = id, at.Add(time.Second)
	if err := b.db.Purges().FinishRun(t.Context(), rep); err != nil {
		t.Fatal(err)
	}
}

// runs returns the recorded runs, oldest first, but for ranBefore's.
func (b *bundle) runs(t *testing.T) []purge.Report {
	t.Helper()
	all, err := b.db.Purges().LastRuns(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var runs []purge.Report
	for _, r := range slices.Backward(all) {
		if r.Instance != historyInstance {
			runs = append(runs, r)
		}
	}
	return runs
}

// snapshot is every row count the purge can change, to show a dry run
// changed nothing.
func (b *bundle) snapshot(t *testing.T) string {
	t.Helper()
	var s string
	err := b.db.Pool().QueryRow(t.Context(), `
		SELECT format('accounts=%s warned=%s sessions=%s tokens=%s outbox=%s',
			(SELECT count(*) FROM accounts), (SELECT count(*) FROM accounts WHERE warned_at IS NOT NULL),
			(SELECT count(*) FROM sessions), (SELECT count(*) FROM tokens),
			(SELECT count(*) FROM outbox))`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
