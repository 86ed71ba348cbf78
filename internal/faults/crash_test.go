package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"signup/internal/devmail"
	"signup/internal/e2e"
	appmail "signup/internal/mail"
	"signup/internal/store/storetest"
)

// seed is FAULT_SEED when set (to replay a failed run's schedule), else
// the clock.
func seed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("FAULT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FAULT_SEED=%q: %v", s, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// generations tells the load's clients whether the process under test
// serves: each restart is a new generation, serving once it answers.
type generations struct {
	mu      sync.Mutex
	gen     int
	serving bool
	final   bool          // no more kills come
	changed chan struct{} // closed and replaced at every change
}

func newGenerations() *generations { return &generations{changed: make(chan struct{})} }

func (g *generations) set(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f()
	close(g.changed)
	g.changed = make(chan struct{})
}

// down starts the next generation, not serving yet.
func (g *generations) down() { g.set(func() { g.gen++; g.serving = false }) }

// up says the current generation serves.
func (g *generations) up() { g.set(func() { g.serving = true }) }

// end says no more kills come.
func (g *generations) end() { g.set(func() { g.final = true }) }

// await waits until a generation newer than after serves (or the current
// one, once no more kills come) and returns its number.
func (g *generations) await(ctx context.Context, after int) (int, error) {
	for {
		g.mu.Lock()
		gen, ok, changed := g.gen, g.serving && (g.gen > after || g.final), g.changed
		g.mu.Unlock()
		if ok {
			return gen, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return gen, ctx.Err()
		}
	}
}

// TestCrashes kills the process with SIGKILL 20 times at random moments of
// a 2,000-signup load from several clients, restarting it after each kill,
// while the SMTP peer answers 20% of messages with a 4xx. After the last
// restart every committed account — each signup answered 303 and each
// account row in the database — gets its confirmation; duplicates are
// counted and bounded by the messages that can be in flight at a kill.
//
// It is the suite's heaviest load (2,000 password hashes), so it runs
// alone, before the parallel tests, whose timings it would skew.
func TestCrashes(t *testing.T) {
	const (
		signups = 2000
		kills   = 20
		clients = 6
	)
	s := seed(t)
	t.Logf("seed %d (FAULT_SEED=%d replays this kill schedule)", s, s)
	rng := rand.New(rand.NewPCG(s, s>>1|1))
	// Kill points: positions in the load, at least 50 signups apart and
	// clear of its ends, each followed by a random delay, so kills land
	// at any phase of a request or a send.
	var points []int
	for len(points) < kills {
		p := 50 + rng.IntN(signups-100)
		if !slices.ContainsFunc(points, func(q int) bool { return q > p-50 && q < p+50 }) {
			points = append(points, p)
		}
	}
	slices.Sort(points)

	mail := startMail(t, devmail.Faults{TempFailRate: 0.2})
	dbURL := storetest.URL(t)
	env := webEnv(dbURL, mail, "HTTP_ADDR", freeAddr(t))
	p := e2e.Start(t, fastBinary, env)
	base := p.URL()
	e2e.WaitReady(t, base, 30*time.Second)
	gens := newGenerations()
	gens.up()

	ctx := t.Context()
	jobs := make(chan int)
	progress := make(chan struct{}, signups)
	outs := make([]outcome, signups)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			c := e2e.NewClient()
			gen := 0
			for i := range jobs {
				var err error
				if gen, err = gens.await(ctx, gen-1); err != nil {
					return
				}
				email := fmt.Sprintf("crash%04d@example.com", i)
				start := time.Now()
				status, err := c.PostForm(base, "/signup", signupForm(email))
				outs[i] = outcome{email: email, status: status, err: err, took: time.Since(start)}
				if err != nil {
					// Killed under us: wait for the restart rather than
					// spend addresses on a closed port.
					if gen, err = gens.await(ctx, gen); err != nil {
						return
					}
				}
				progress <- struct{}{}
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range signups {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()

	start := time.Now()
	var restarts latencies
	done := 0
	for k, at := range points {
		for ; done < at; done++ {
			select {
			case <-progress:
			case <-time.After(time.Minute):
				t.Fatalf("kill %d: the load stalled at %d signups", k+1, done)
			}
		}
		timer := time.NewTimer(time.Duration(rng.Int64N(int64(50 * time.Millisecond))))
		<-timer.C
		gens.down()
		p.Kill()
		down := time.Now()
		p = e2e.Start(t, fastBinary, env)
		e2e.WaitReady(t, base, 30*time.Second)
		restarts = append(restarts, time.Since(down))
		gens.up()
	}
	gens.end()
	wg.Wait()
	loadTook := time.Since(start)
	loadEnd := time.Now()

	db := openDB(t, dbURL)
	ok := answered(outs)
	inDB := accountEmails(t, db)
	committed := map[string]bool{}
	for _, e := range inDB {
		committed[e] = true
	}
	var answeredLost []string
	for _, e := range ok {
		if !committed[e] {
			answeredLost = append(answeredLost, e)
		}
	}
	want := union(ok, inDB)
	d := waitConfirmations(t, mail, want, 90*time.Second)
	drained := time.Since(loadEnd)
	counts := waitOutboxSettled(t, db, 30*time.Second)

	t.Logf("%d signups from %d clients in %v with %d SIGKILLs (restart to ready %s); answers: %s",
		signups, clients, loadTook.Round(time.Millisecond), kills, restarts, tally(outs))
	t.Logf("%d answered 303, %d accounts in the database (%d committed without an answer: killed between commit and reply)",
		len(ok), len(inDB), len(want)-len(ok))
	t.Logf("lost: %d accounts without a confirmation, %d answered signups without an account; duplicates: %d; all mail in %v after the load ended; SMTP attempts %d for %d accepted; outbox %+v",
		len(d.missing), len(answeredLost), d.duplicates, drained.Round(time.Millisecond), mail.Attempts(), mail.Received(), counts)
	if len(answeredLost) > 0 {
		t.Errorf("%d signups answered 303 have no account: %v", len(answeredLost), answeredLost[:min(5, len(answeredLost))])
	}
	d.requireNoneLost(t, counts)
	// At-least-once: a kill can repeat what was in DATA or sent but not
	// yet marked, one message per worker.
	if limit := kills * appmail.DefaultWorkers; d.duplicates > limit {
		t.Errorf("%d duplicates; at most %d (one per worker per kill) may arrive twice", d.duplicates, limit)
	}
}
