package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"time"

	"signup/internal/devmail"
)

func startup(sz sizes) *scenario {
	return &scenario{
		name:     "time from start to /readyz 200 (migrated DB)",
		unit:     "ms",
		baseUnit: "ms",
		goal:     &goal{text: "< 100 ms", onValue: true, limit: 100},
		note: fmt.Sprintf("Median of %d starts per run of the web binary on an already migrated database, timed from exec until "+
			"GET /readyz (polled every 1 ms on a port chosen beforehand) answers 200. Baseline: `true` started the same way "+
			"(same launcher, same environment, stderr read) and timed until it exits.", sz.starts),
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			db, err := h.newDatabase(ctx)
			if err != nil {
				return measurement{}, err
			}
			defer db.Close()
			peer, err := startDevmail(ctx, devmail.Faults{})
			if err != nil {
				return measurement{}, err
			}
			defer stopDevmail(peer)
			trueBin, err := exec.LookPath("true")
			if err != nil {
				return measurement{}, err
			}

			var webTimes, trueTimes []float64
			for range sz.starts {
				addr, err := freeAddr()
				if err != nil {
					return measurement{}, err
				}
				env := webEnv(db.url, peer.SMTPURL(), addr)
				d, err := timeToReady(ctx, h.webBin, env, "http://"+addr)
				if err != nil {
					return measurement{}, err
				}
				webTimes = append(webTimes, ms(d))
				d, err = timeToExit(ctx, trueBin, env)
				if err != nil {
					return measurement{}, err
				}
				trueTimes = append(trueTimes, ms(d))
			}
			return measurement{value: median(webTimes), baseline: median(trueTimes)}, nil
		},
	}
}

// freeAddr returns a loopback address with a port free right now. Another
// program could take it before the web does; on this machine nothing
// else picks ports that fast.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// timeToReady starts bin and times it until base/readyz answers 200.
func timeToReady(ctx context.Context, bin string, env []string, base string) (time.Duration, error) {
	start := time.Now()
	p, err := launch(bin, env)
	if err != nil {
		return 0, err
	}
	defer p.kill()
	if err := waitReady(ctx, base, time.Millisecond, time.Minute); err != nil {
		return 0, fmt.Errorf("%w\nweb log:\n%s", err, p.log())
	}
	return time.Since(start), nil
}

// timeToExit starts bin the same way and times it until it exits.
func timeToExit(ctx context.Context, bin string, env []string) (time.Duration, error) {
	start := time.Now()
	p, err := launch(bin, env)
	if err != nil {
		return 0, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.kill()
		return 0, ctx.Err()
	}
	d := time.Since(start)
	if p.err != nil {
		return 0, fmt.Errorf("%s: %w", bin, p.err)
	}
	return d, nil
}

// median of xs (which it sorts).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
