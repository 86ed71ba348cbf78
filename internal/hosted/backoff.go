package hosted

import (
	"math/rand/v2"
	"time"
)

// backoff computes restart delays: exponential from min, capped at max, with
// jitter that keeps each delay within [min, max] and at least half the
// un-jittered delay. Until the cap is reached, delays therefore never
// decrease; at the cap they spread over [max/2, max].
type backoff struct {
	min, max time.Duration
}

// delay returns the wait before restart number attempt (0 for the first).
func (b backoff) delay(attempt int) time.Duration {
	d := b.min
	for i := 0; i < attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	lo := max(d/2, b.min)
	if d <= lo {
		return d
	}
	return lo + rand.N(d-lo+1)
}
