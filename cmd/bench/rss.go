package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"signup/internal/devmail"
)

func peakRSS(sz sizes) *scenario {
	return &scenario{
		name:     fmt.Sprintf("peak RSS, %d concurrent signups", sz.concurrent),
		unit:     "MB peak",
		baseUnit: "MB idle",
		goal:     &goal{text: "peak < 200 MB", onValue: true, limit: 200},
		note: fmt.Sprintf("The web process's VmHWM (peak resident set) from /proc/<pid>/status after %d signups sent at once, "+
			"each on its own connection, all answered; baseline: its VmRSS once ready, before any request. MB = 2^20 bytes.",
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
			if err := burst(ctx, s.url, sz.concurrent); err != nil {
				return measurement{}, err
			}
			_, peak, err := s.web.memory()
			if err != nil {
				return measurement{}, err
			}
			return measurement{value: mb(peak), baseline: mb(idle)}, nil
		},
	}
}

func mb(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// burst sends n signups at the same moment, each on its own connection,
// and waits for every answer.
func burst(ctx context.Context, base string, n int) error {
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
			return err
		}
		req, err := t.Request()
		if err != nil {
			return err
		}
		reqs[i] = req.WithContext(ctx)
	}
	// The goroutines wait on one signal, so the requests go out together.
	start := make(chan struct{})
	errs := make(chan error, n)
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
			if res.StatusCode != http.StatusSeeOther {
				errs <- fmt.Errorf("signup: status %d", res.StatusCode)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("%d of %d signups failed, first: %w", len(errs)+1, n, err)
	}
	return nil
}
