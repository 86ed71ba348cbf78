package faults_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"signup/internal/devmail"
	"signup/internal/e2e"
	"signup/internal/store/storetest"
)

// procStatus reads VmRSS (in KiB) and Threads from /proc/pid/status.
func procStatus(pid int) (rssKiB, threads int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			rssKiB = n
		case "Threads":
			threads = n
		}
	}
	return rssKiB, threads, sc.Err()
}

// TestSlowDatabase puts a proxy between the process and PostgreSQL that
// delays every chunk by 50 ms each way (a signup's transaction then takes
// about a second, a new connection as long again), and sends 10 signups a
// second for 15 s, more than the pool can serve; halfway, it cuts every
// connection. Requests do not pile up: each is answered, 303 or a 503
// page, within REQUEST_TIMEOUT plus a margin (1.5 s, or twice the slowest
// signup of the same load with the database fast, measured just before,
// if the machine is that slow); the process holds a bounded
// number of database connections, threads and memory; and once the
// database is fast again, every committed signup gets its confirmation.
func TestSlowDatabase(t *testing.T) {
	t.Parallel()
	const (
		latency = 50 * time.Millisecond
		timeout = 2 * time.Second
		rate    = 10
		load    = 15 * time.Second
	)
	dbURL, proxied, proxy := storetest.URLBehindProxy(t)
	mail := startMail(t, devmail.Faults{})
	p := e2e.Start(t, fastBinary, webEnv(proxied, mail, "REQUEST_TIMEOUT", timeout.String()))
	base := p.URL()
	e2e.WaitReady(t, base, 30*time.Second)
	pid := p.Cmd.Process.Pid
	rss0, threads0, err := procStatus(pid)
	if err != nil {
		t.Fatal(err)
	}

	// The baseline: the same load with the database fast, on this machine
	// as it is now. What a signup takes beyond its database work (the
	// password hash, the page) it also takes with the database slow.
	var fast latencies
	for _, o := range pacedSignups(t.Context(), e2e.NewClient(), base, "fastdb", rate, 2*time.Second) {
		fast = append(fast, o.took)
	}
	margin := max(1500*time.Millisecond, 2*fast.percentile(1))

	proxy.SetLatency(latency)
	proxy.ResetPeak()
	// Sample the process and the proxy while the load runs; nothing
	// signals these, so they are polled.
	var peakRSS, peakThreads atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(t.Context())
	var sampled sync.WaitGroup
	sampled.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, th, err := procStatus(pid); err == nil {
				peakRSS.Store(max(peakRSS.Load(), rss))
				peakThreads.Store(max(peakThreads.Load(), th))
			}
			select {
			case <-tick.C:
			case <-sampleCtx.Done():
				return
			}
		}
	})
	// Halfway, every database connection is cut without a word, as a
	// crashed server or a broken network does: requests in flight must
	// still get a 503, not a 500.
	var cutOpen atomic.Int64
	cut := time.AfterFunc(load/2, func() { cutOpen.Store(proxy.Open()); proxy.Cut() })
	defer cut.Stop()
	outs := pacedSignups(t.Context(), e2e.NewClient(), base, "slowdb", rate, load)
	stopSampling()
	sampled.Wait()
	peakConns := proxy.Peak()

	proxy.SetLatency(0)
	recovered := waitReadiness(t, base, http.StatusOK, 30*time.Second)
	e2e.NewClient().Signup(t, base, "after-slow@example.com")
	if p.Exited() {
		t.Fatal("web exited under a slow database")
	}

	var took latencies
	var bad []outcome
	for _, o := range outs {
		took = append(took, o.took)
		if o.err != nil || (o.status != http.StatusSeeOther && o.status != http.StatusServiceUnavailable) || o.took > timeout+margin {
			bad = append(bad, o)
		}
	}
	db := openDB(t, dbURL)
	want := union(answered(outs), []string{"after-slow@example.com"}, accountEmails(t, db))
	d := waitConfirmations(t, mail, want, 60*time.Second)
	// A row whose send went through but whose mark was cut off stays
	// leased to this process until its lease (a minute by default) runs
	// out and a sweep takes it again; the deadline covers that.
	counts := waitOutboxSettled(t, db, 3*time.Minute)

	t.Logf("with the database fast, signups at %d/s: %s; margin over REQUEST_TIMEOUT %v", rate, fast, margin)
	t.Logf("database %v a chunk each way, %d connections cut halfway, %d signups at %d/s, REQUEST_TIMEOUT %v: %s; answers %s",
		latency, cutOpen.Load(), len(outs), rate, timeout, took, tally(outs))
	inFlight := peakInFlight(outs)
	t.Logf("process: requests in flight at most %d; RSS %d KiB before, peak %d KiB; threads %d before, peak %d; database connections at the proxy: peak %d (%d opened in all)",
		inFlight, rss0, peakRSS.Load(), threads0, peakThreads.Load(), peakConns, proxy.Total())
	t.Logf("database fast again: ready after %v; lost %d of %d committed signups, duplicates %d; outbox %+v",
		recovered.Round(time.Millisecond), len(d.missing), len(want), d.duplicates, counts)
	for _, o := range bad[:min(5, len(bad))] {
		t.Errorf("signup %s: status %d after %v (%v); want 303 or 503 within %v", o.email, o.status, o.took, o.err, timeout+margin)
	}
	if len(bad) > 5 {
		t.Errorf("… and %d more", len(bad)-5)
	}
	// Requests (and the goroutines serving them) are bounded by the
	// arrival rate times the longest answer: they do not pile up.
	if limit := int(float64(rate)*(timeout+margin).Seconds()) + 1; inFlight > limit {
		t.Errorf("%d requests in flight at once; at %d/s, answered within %v, at most %d", inFlight, rate, timeout+margin, limit)
	}
	// The pool's connections (4 on this machine), the sender's lock, the
	// purger's, and the readiness probe's: not one per waiting request.
	if peakConns > 12 {
		t.Errorf("%d database connections at once under a slow database", peakConns)
	}
	if peakThreads.Load() > threads0+20 {
		t.Errorf("threads grew from %d to %d", threads0, peakThreads.Load())
	}
	if peakRSS.Load() > rss0+200<<10 {
		t.Errorf("RSS grew from %d KiB to %d KiB", rss0, peakRSS.Load())
	}
	d.requireNoneLost(t, counts)
}
