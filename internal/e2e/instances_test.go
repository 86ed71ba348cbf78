package e2e_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/devmail"
	"signup/internal/e2e"
	"signup/internal/store"
	"signup/internal/store/storetest"
	"signup/internal/waitfor"
)

// TestThreeInstances runs three processes on one database behind a
// round-robin balancer, under a signup load, with the purge due every two
// seconds, and stops one of them (SIGTERM) a third of the way through.
// Every signup that got its 303 gets exactly one confirmation, no address
// gets two, the stopped instance exits cleanly, and each purge tick is
// served by exactly one run across the three.
func TestThreeInstances(t *testing.T) {
	mail := startMail(t)
	dbURL := storetest.URL(t)
	env := map[string]string{
		"DATABASE_URL": dbURL, "SMTP_URL": mail.SMTPURL(), "RATE_LIMIT": "off",
		"PURGE_SCHEDULE": "@every 2s",
	}
	procs := []*e2e.Process{e2e.Start(t, fastBinary, env), e2e.Start(t, fastBinary, env), e2e.Start(t, fastBinary, env)}
	for _, p := range procs {
		e2e.WaitReady(t, p.URL(), 30*time.Second)
	}
	db, err := store.Open(t.Context(), dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	loadStart := time.Now()

	const n, stopAt = 300, 100
	victim := procs[2]
	var (
		stopped  atomic.Bool
		stopOnce sync.Once
		mu       sync.Mutex
		accepted []string // answered 303: the site promised an email
		refused  []string // an error or another status: no promise made
		seen     atomic.Int64
	)
	emails := make([]string, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			c := e2e.NewClient()
			for i := range jobs {
				// The balancer sends nothing more to an instance once it
				// was told to stop (its readiness turns false at once).
				p := procs[(i+w)%3]
				if p == victim && stopped.Load() {
					p = procs[(i+w)%2]
				}
				status, err := c.PostForm(p.URL(), "/signup", url.Values{"email": {emails[i]}, "password": {"a long and unusual passphrase"}})
				mu.Lock()
				if err == nil && status == http.StatusSeeOther {
					accepted = append(accepted, emails[i])
				} else {
					refused = append(refused, emails[i])
				}
				mu.Unlock()
				if seen.Add(1) == stopAt {
					stopOnce.Do(func() {
						stopped.Store(true)
						victim.Cmd.Process.Signal(interrupt)
					})
				}
			}
		})
	}
	for i := range n {
		emails[i] = fmt.Sprintf("trio%03d@example.com", i)
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("%d signups over three instances, one stopped after %d, in %v: %d accepted, %d refused",
		n, stopAt, time.Since(loadStart).Round(time.Millisecond), len(accepted), len(refused))
	if code := victim.Wait(t, 60*time.Second); code != 0 {
		t.Errorf("the stopped instance exited %d, want 0", code)
	}
	if len(accepted) < n-20 {
		t.Errorf("only %d of %d signups accepted", len(accepted), n)
	}

	// Every promise is kept, once; the outbox settles with nothing left.
	waitMail(t, mail, accepted, 2*time.Minute)
	waitfor.Until(t, time.Minute, func() error {
		c, err := db.Outbox().Counts(t.Context())
		if err != nil {
			return fmt.Errorf("count outbox rows: %w", err)
		}
		if c.Pending != 0 || c.Sending != 0 {
			return fmt.Errorf("outbox not settled: %+v", c)
		}
		return nil
	})
	counts, err := db.Outbox().Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	per := countPerAddress(mail.Messages())
	dups := 0
	for _, e := range emails {
		if per[e] > 1 {
			dups += per[e] - 1
		}
	}
	for _, e := range accepted {
		if per[e] != 1 {
			t.Errorf("%s got %d confirmations, want 1", e, per[e])
		}
	}
	if dups != 0 {
		t.Errorf("%d duplicate confirmations", dups)
	}
	if total := int64(len(mail.Messages())); counts.Sent != total || counts.Failed != 0 {
		t.Errorf("outbox %+v; the peer got %d messages", counts, total)
	}
	var sentBy []int
	for _, p := range procs {
		sentBy = append(sentBy, strings.Count(p.Log(), `"msg":"mail sent"`))
	}
	t.Logf("%d confirmations delivered, %d duplicates; sent by each instance: %v", len(mail.Messages()), dups, sentBy)
	if sentBy[2] == 0 {
		t.Error("the stopped instance sent nothing before it stopped; it did not take part")
	}

	// The purge: let a few more ticks pass with two instances, then count
	// the runs per tick since the load began.
	waitfor.Until(t, time.Minute, func() error {
		var served int
		if err := db.Pool().QueryRow(t.Context(), `
			SELECT count(DISTINCT scheduled) FROM purge_runs
			WHERE scheduled >= $1 AND error IS NULL AND finished_at IS NOT NULL`, loadStart).Scan(&served); err != nil {
			return fmt.Errorf("count purge runs: %w", err)
		}
		if served < 3 {
			return fmt.Errorf("%d of 3 purge ticks served since the load began", served)
		}
		return nil
	})
	for _, p := range procs[:2] {
		p.Cmd.Process.Signal(interrupt)
	}
	for _, p := range procs[:2] {
		if code := p.Wait(t, 60*time.Second); code != 0 {
			t.Errorf("exit code %d", code)
		}
	}
	checkPurgeTicks(t, db, loadStart, 2*time.Second)
}

// tickRuns is what purge_runs holds for one schedule tick.
type tickRuns struct {
	Scheduled   time.Time `db:"scheduled"`
	Succeeded   int       `db:"succeeded"`
	Interrupted int       `db:"interrupted"`
}

// checkPurgeTicks checks that every tick from the first at or after since
// to the last served has exactly one successful run, or else an
// interrupted one (an instance stopped mid-run: the tick is left to the
// next one, by design). A tick with no run at all is missed unless a run
// held the purge lock at that moment: the instances that woke for it found
// the purge busy, and the run that outlasted it serves only the latest
// tick when it ends (by design: a run slower than the schedule on a busy
// machine skips ticks rather than piling them up).
func checkPurgeTicks(t *testing.T, db *store.DB, since time.Time, every time.Duration) {
	t.Helper()
	rows, err := db.Pool().Query(t.Context(), `
		SELECT scheduled,
		       count(*) FILTER (WHERE error IS NULL AND finished_at IS NOT NULL) AS succeeded,
		       count(*) FILTER (WHERE error LIKE 'interrupted%') AS interrupted
		FROM purge_runs WHERE scheduled >= $1
		GROUP BY scheduled ORDER BY scheduled`, since)
	if err != nil {
		t.Fatal(err)
	}
	ticks, err := pgx.CollectRows(rows, pgx.RowToStructByName[tickRuns])
	if err != nil {
		t.Fatal(err)
	}
	if len(ticks) < 3 {
		t.Fatalf("%d ticks recorded, want at least 3", len(ticks))
	}
	busy := func(tick time.Time) (bool, error) {
		var held bool
		err := db.Pool().QueryRow(t.Context(), `
			SELECT EXISTS (SELECT FROM purge_runs
			               WHERE started_at <= $1 AND (finished_at IS NULL OR finished_at >= $1))`, tick).Scan(&held)
		return held, err
	}
	skipped := 0
	for i, tk := range ticks {
		switch {
		case tk.Succeeded > 1:
			t.Errorf("tick %v: %d successful runs, want 1", tk.Scheduled, tk.Succeeded)
		case tk.Succeeded == 0 && tk.Interrupted == 0:
			t.Errorf("tick %v: no successful run", tk.Scheduled)
		}
		if i == 0 {
			continue
		}
		for gap := ticks[i-1].Scheduled.Add(every); gap.Before(tk.Scheduled); gap = gap.Add(every) {
			held, err := busy(gap)
			switch {
			case err != nil:
				t.Fatalf("read purge runs: %v", err)
			case held:
				skipped++
			default:
				t.Errorf("tick %v has no run, and no run held the purge lock then: it was missed", gap)
			}
		}
	}
	t.Logf("%d purge ticks from %v to %v, each served once; %d skipped while a run outlasted them",
		len(ticks), ticks[0].Scheduled.Format(time.TimeOnly), ticks[len(ticks)-1].Scheduled.Format(time.TimeOnly), skipped)
}

// countPerAddress counts messages per recipient.
func countPerAddress(msgs []devmail.Message) map[string]int {
	per := map[string]int{}
	for _, m := range msgs {
		for _, to := range m.To {
			per[to]++
		}
	}
	return per
}
