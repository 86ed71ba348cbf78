package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"signup/internal/devmail"
)

func peakRSS(sz sizes) *scenario {
	return &scenario{
		name:     fmt.Sprintf("peak RSS, %d concurrent signups", sz.concurrent),
		unit:     "MB peak",
		baseUnit: "MB idle",
		goal:     &goal{text: "peak < 200 MB, all answered 303", onValue: true, limit: 200},
		note: fmt.Sprintf("The web process's VmHWM (peak resident set) from /proc/<pid>/status after %d signups sent at once, "+
			"each on its own connection, all answered (303, or 503 with Retry-After when the hashing queue sheds them: the per-run "+
			"figures count both; a run that shed any misses the goal, since the goal is the peak of a burst served whole); "+
			"baseline: its VmRSS once ready, before any request. MB = 2^20 bytes.",
			sz.concurrent),
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			s, err := h.startSite(ctx, devmail.Faults{})
			if err != nil {
				return measurement{}, err
			}
			defer s.close()
			idle, _, err := s.web.memory()
			if err != nil {
				return measurement{}, err
			}
			b, err := burst(ctx, s.url, sz.concurrent)
			if err != nil {
				return measurement{}, err
			}
			_, peak, err := s.web.memory()
			if err != nil {
				return measurement{}, err
			}
			m := measurement{value: mb(peak), baseline: mb(idle), detail: b.String()}
			if b.shed > 0 {
				// Shedding would keep the peak low; the goal is the peak of
				// a burst served whole.
				m.short = fmt.Sprintf("%d of %d signups shed", b.shed, sz.concurrent)
			}
			return m, nil
		},
	}
}

func mb(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// burstResult is what a burst's signups were answered: how many 303, how
// many shed with 503 and Retry-After, and when the last of those shed got
// its answer (shed at once, or after waiting), from the moment they were
// sent.
type burstResult struct {
	answered, shed int
	lastShed       time.Duration
}

func (b burstResult) String() string {
	s := fmt.Sprintf("%d answered 303, %d shed with 503 + Retry-After", b.answered, b.shed)
	if b.shed > 0 {
		s += fmt.Sprintf(", the last of them after %v", b.lastShed.Round(time.Millisecond))
	}
	return s
}

// burst sends n signups at the same moment, each on its own connection,
// waits for every answer, and counts those answered 303 and those shed
// with 503 and Retry-After. Any other answer is an error.
func burst(ctx context.Context, base string, n int) (burstResult, error) {
	var r burstResult
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: n},
	}
	defer client.CloseIdleConnections()
	tr := signupTargeter(base)
	reqs := make([]*http.Request, n)
	for i := range reqs {
		var t vegeta.Target
		if err := tr(&t); err != nil {
			return r, err
		}
		req, err := t.Request()
		if err != nil {
			return r, err
		}
		reqs[i] = req.WithContext(ctx)
	}
	// The goroutines wait on one signal, so the requests go out together.
	start := make(chan struct{})
	var sent time.Time // set before start closes
	errs := make(chan error, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, req := range reqs {
		wg.Go(func() {
			<-start
			res, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			res.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case res.StatusCode == http.StatusSeeOther:
				r.answered++
			case res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") != "":
				r.shed++
				r.lastShed = max(r.lastShed, time.Since(sent))
			default:
				errs <- fmt.Errorf("signup: status %d", res.StatusCode)
			}
		})
	}
	sent = time.Now()
	close(start)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return r, fmt.Errorf("%d of %d signups failed, first: %w", len(errs)+1, n, err)
	}
	return r, nil
}
