package http_test

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"signup/internal/account"
)

// A burst of signups longer than REQUEST_TIMEOUT to hash is a queue: every
// signup is answered, because the wait for a hashing turn is not counted
// against the request's deadline.
func TestBurstOutlastingTheRequestTimeoutIsAnswered(t *testing.T) {
	t.Parallel()
	params := account.Params{Memory: 4096, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	// The request timeout leaves each signup ample time for its own hash
	// and insert, and the burst queues three timeouts' worth of hashes.
	began := time.Now()
	if _, err := account.NewHasher(params, 1).Hash(t.Context(), password); err != nil {
		t.Fatal(err)
	}
	hash := time.Since(began)
	timeout := max(10*hash, time.Second)
	n := min(int(3*timeout/hash)+1, 1000)
	b := setup(t, func(o *options) {
		o.params = params
		o.concurrency = 1
		o.requestTimeout = timeout
		o.hasherOpts = []account.HasherOption{account.WithMaxWait(time.Hour)}
	})
	// A loaded machine may have timed the calibration hash slow: a burst
	// that went through within the timeout is grown and sent again.
	total := 0
	for attempt := 0; ; attempt++ {
		took := sendBurst(t, b, n, total)
		total += n
		if took > timeout {
			break
		}
		if attempt == 3 {
			t.Fatalf("the burst of %d took %v, no longer than REQUEST_TIMEOUT (%v): it did not test the queue", n, took, timeout)
		}
		n *= 2
	}
	if got := b.count(t, `SELECT count(*) FROM accounts`); got != total {
		t.Errorf("accounts: %d, want %d", got, total)
	}
}

// sendBurst sends n signups at once, numbered from first, expects every
// one answered 303, and returns how long the burst took.
func sendBurst(t *testing.T, b *bundle, n, first int) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			email := fmt.Sprintf("burst-%d@example.com", first+i)
			res := b.post(t, b.client(t), "/signup", url.Values{"email": {email}, "password": {password}})
			statuses <- res.status
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[http.StatusSeeOther] != n {
		t.Fatalf("statuses %v, want all %d signups answered 303", counts, n)
	}
	return took
}
