package main

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"signup/internal/account"
	"signup/internal/devmail"
)

func signupThroughput(sz sizes) *scenario {
	return &scenario{
		name:     "signups/s at saturation",
		unit:     "signups/s",
		baseUnit: "hashes/s",
		goal:     &goal{text: "ratio ≥ 0.9", atLeast: true, limit: 0.9},
		note: fmt.Sprintf("Baseline: NumCPU goroutines hashing with account.DefaultParams (argon2id m=19 MiB, t=2, p=1) in this process, "+
			"for %v in all: half just before the signups and half just after, averaged, so that a drift in the machine's load "+
			"during the run weighs on both sides alike (both halves are in the per-run figures). "+
			"Signups: %d×NumCPU closed-loop vegeta workers POST /signup to the web process for %v; 303 answers per second, "+
			"the load generator, PostgreSQL and the mail sender sharing the same cores.", sz.hashFor, saturationWorkersPerCPU, sz.saturateFor),
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			s, err := h.startSite(ctx, devmail.Faults{})
			if err != nil {
				return measurement{}, err
			}
			defer s.close()
			tr := signupTargeter(s.url)
			// Warm up: connections, the pool, the first hashes. The baseline
			// waits until the site has sent the warm-up's mail, so that it
			// does not share the cores with the site.
			warm := atSaturation(ctx, tr, runtime.NumCPU(), sz.saturateFor/10)
			signups := int64(warm.StatusCodes[fmt.Sprint(http.StatusSeeOther)])
			if err := waitReceived(ctx, s.mail, signups); err != nil {
				return measurement{}, err
			}
			before, err := hashRate(ctx, sz.hashFor/2)
			if err != nil {
				return measurement{}, err
			}
			m := atSaturation(ctx, tr, saturationWorkersPerCPU*runtime.NumCPU(), sz.saturateFor)
			if err := expect(m, http.StatusSeeOther, h.progress); err != nil {
				return measurement{}, err
			}
			signups += int64(m.StatusCodes[fmt.Sprint(http.StatusSeeOther)])
			if err := waitReceived(ctx, s.mail, signups); err != nil {
				return measurement{}, err
			}
			after, err := hashRate(ctx, sz.hashFor/2)
			if err != nil {
				return measurement{}, err
			}
			peer, err := xcryptoHashRate(sz.hashFor / 2)
			if err != nil {
				return measurement{}, err
			}
			signupRate := perSecond(m, http.StatusSeeOther)
			return measurement{
				value:    signupRate,
				baseline: (before + after) / 2,
				detail: fmt.Sprintf("hashes/s %s before, %s after; x/crypto/argon2 with new memory for each hash %s hashes/s (signups %s of it)",
					fmtNum(before), fmtNum(after), fmtNum(peer), fmtNum(signupRate/peer)),
			}, nil
		},
	}
}

// saturationWorkersPerCPU keeps the site's hashing slots (one per CPU) busy
// with requests queued behind them, so no core waits for the client.
const saturationWorkersPerCPU = 4

// hashRate is how many passwords NumCPU goroutines hash per second with the
// product's parameters, through the product's Hasher.
func hashRate(ctx context.Context, d time.Duration) (float64, error) {
	hasher := account.NewHasher(account.DefaultParams(), runtime.NumCPU())
	if _, err := hasher.Hash(ctx, password); err != nil { // warm up
		return 0, err
	}
	return rate(d, func() error {
		_, err := hasher.Hash(ctx, password)
		return err
	})
}

// xcryptoHashRate is hashRate for golang.org/x/crypto/argon2 called as a
// program would without the product's Hasher: new work memory for every
// hash. It is the peer's figure, shown beside the row's.
func xcryptoHashRate(d time.Duration) (float64, error) {
	p := account.DefaultParams()
	salt := make([]byte, p.SaltLen)
	return rate(d, func() error {
		argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
		return nil
	})
}

// rate runs f on NumCPU goroutines for d and returns how many calls ended
// per second.
func rate(d time.Duration, f func() error) (float64, error) {
	n := runtime.NumCPU()
	var count atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := f(); err != nil {
					errs <- err
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(count.Load()) / elapsed.Seconds(), nil
}
