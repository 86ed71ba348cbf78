package mail_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"signup/internal/account"
	"signup/internal/devmail"
	"signup/internal/hosted"
	"signup/internal/mail"
	"signup/internal/store"
	"signup/internal/store/storetest"
	"signup/web"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait; the tests never sleep.
const testTimeout = 60 * time.Second

// baseURL is BASE_URL in the tests; its path checks that links keep it.
const baseURL = "https://signup.example.test/app"

// bundle is what a test works with besides the sender.
type bundle struct {
	db      *store.DB
	smtp    *devmail.Server
	queue   *hosted.Queue[mail.Job]
	results *recorder
	cfg     mail.Config
}

// setup starts a devmail server (configured by dm) on a fresh database and
// returns a sender configuration for fast tests, which tweak may change
// before the sender is built. The sender is not started.
func setup(t *testing.T, dm devmail.Config, tweak func(*mail.Config)) (*mail.Sender, *bundle) {
	t.Helper()
	t.Parallel()
	b := &bundle{db: storetest.New(t), smtp: devmail.New(dm), queue: hosted.NewQueue[mail.Job](256), results: newRecorder()}
	if err := b.smtp.Start(t.Context()); err != nil {
		t.Fatalf("start devmail: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := b.smtp.Stop(ctx); err != nil {
			t.Errorf("stop devmail: %v", err)
		}
	})
	srv, err := mail.ParseSMTPURL(b.smtp.SMTPURL())
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(baseURL)
	composer, err := account.NewComposer(account.ComposerConfig{Templates: web.Emails, Tokens: b.db.Accounts(), BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	b.cfg = mail.Config{
		Composer:    composer,
		Outbox:      b.db.Outbox(),
		Queue:       b.queue,
		SMTP:        srv,
		From:        "Signup Test <no-reply@signup.example.test>",
		Workers:     2,
		SweepEvery:  20 * time.Millisecond,
		Lease:       10 * time.Second,
		RetryMin:    5 * time.Millisecond,
		RetryMax:    20 * time.Millisecond,
		SendTimeout: 5 * time.Second,
		Instance:    "test-" + t.Name(),
		Logger:      testLogger(t),
		OnResult:    b.results.record,
	}
	if tweak != nil {
		tweak(&b.cfg)
	}
	return newSender(t, b.cfg), b
}

// newSender builds a sender and stops it when the test ends (a no-op if the
// test stopped it).
func newSender(t *testing.T, cfg mail.Config) *mail.Sender {
	t.Helper()
	s, err := mail.New(cfg)
	if err != nil {
		t.Fatalf("new sender: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop sender: %v", err)
		}
	})
	return s
}

func start(t *testing.T, s *mail.Sender) {
	t.Helper()
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("start sender: %v", err)
	}
}

// testContext is the test's context bounded by testTimeout.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testLogger writes to the test log, so a failing test shows what the
// sender said.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// signup creates an account for email (now) and returns its outbox row id.
func signup(t *testing.T, db *store.DB, email string) int64 {
	t.Helper()
	res, err := db.Accounts().Signup(t.Context(), email, "not-a-real-hash", time.Now(), storetest.NoLimit(email), storetest.NoLimit(email))
	if err != nil {
		t.Fatalf("signup %s: %v", email, err)
	}
	return res.OutboxID
}

// enqueue signs up n addresses user0@…, user1@… and offers their rows to
// the queue, as the signup handler does.
func (b *bundle) enqueue(t *testing.T, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range n {
		ids[i] = signup(t, b.db, fmt.Sprintf("user%d@example.test", i))
		b.queue.TryEnqueue(mail.NewJob(ids[i]))
	}
	return ids
}

// waitMessages waits until devmail holds n messages.
func (b *bundle) waitMessages(t *testing.T, n int) []devmail.Message {
	t.Helper()
	msgs, err := b.smtp.Wait(testContext(t), func(m []devmail.Message) bool { return len(m) >= n })
	if err != nil {
		t.Fatalf("wait for %d messages: got %d: %v", n, len(msgs), err)
	}
	return msgs
}

// outboxRow is an outbox row as the tests inspect it.
type outboxRow struct {
	Status    string
	Attempts  int
	LeasedBy  *string
	LastError *string
	SentAt    *time.Time
}

func (b *bundle) row(t *testing.T, id int64) outboxRow {
	t.Helper()
	var r outboxRow
	err := b.db.Pool().QueryRow(t.Context(),
		`SELECT status, attempts, leased_by, last_error, sent_at FROM outbox WHERE id = $1`, id).
		Scan(&r.Status, &r.Attempts, &r.LeasedBy, &r.LastError, &r.SentAt)
	if err != nil {
		t.Fatalf("read outbox row %d: %v", id, err)
	}
	return r
}

// statusCounts returns the number of outbox rows per status.
func (b *bundle) statusCounts(t *testing.T) store.OutboxCounts {
	t.Helper()
	c, err := b.db.Outbox().Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// recorder collects the sender's results and lets tests wait on them.
type recorder struct {
	mu      sync.Mutex
	results []mail.Result
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) record(res mail.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
	close(r.changed)
	r.changed = make(chan struct{})
}

// wait blocks until cond holds for the results so far and returns them.
func (r *recorder) wait(t *testing.T, what string, cond func([]mail.Result) bool) []mail.Result {
	t.Helper()
	ctx := testContext(t)
	for {
		r.mu.Lock()
		results, changed := append([]mail.Result(nil), r.results...), r.changed
		r.mu.Unlock()
		if cond(results) {
			return results
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; results so far: %+v", what, ctx.Err(), results)
		}
	}
}

// count returns how many results have outcome o (for id, if id != 0).
func count(results []mail.Result, id int64, o mail.Outcome) int {
	n := 0
	for _, r := range results {
		if r.Outcome == o && (id == 0 || r.ID == id) {
			n++
		}
	}
	return n
}

// lockHolders returns the server pids holding instance's lock, the
// documented pg_advisory_lock_shared(0x6d61696c, hashtext(instance)).
func (b *bundle) lockHolders(t *testing.T, instance string) []uint32 {
	t.Helper()
	rows, err := b.db.Pool().Query(t.Context(), `
		SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND classid = x'6d61696c'::int AND objsubid = 2 AND granted
		  AND objid = hashtext($1)::oid
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, instance)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// leaseTo makes row id look like instance's work in progress: leased until
// until, on its first attempt.
func (b *bundle) leaseTo(t *testing.T, id int64, instance string, until time.Time) {
	t.Helper()
	if _, err := b.db.Pool().Exec(t.Context(), `
		UPDATE outbox SET status = 'sending', attempts = 1, leased_by = $2, lease_until = $3 WHERE id = $1`,
		id, instance, until); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond on database state, where nothing signals, until it
// holds or testTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := testContext(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}
