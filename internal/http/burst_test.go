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
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			res := b.post(t, b.client(t), "/signup", url.Values{"email": {fmt.Sprintf("burst-%d@example.com", i)}, "password": {password}})
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
	if took <= timeout {
		t.Fatalf("the burst of %d took %v, no longer than REQUEST_TIMEOUT (%v): it did not test the queue", n, took, timeout)
	}
	if got := b.count(t, `SELECT count(*) FROM accounts`); got != n {
		t.Errorf("accounts: %d, want %d", got, n)
	}
}
