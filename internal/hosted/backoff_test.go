package hosted

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 30 * time.Second}
	if d := b.delay(0); d != b.min {
		t.Errorf("first delay %v, want %v", d, b.min)
	}
	for range 100 {
		var prev time.Duration
		for attempt := range 20 {
			d := b.delay(attempt)
			if d < b.min || d > b.max {
				t.Fatalf("attempt %d: %v, want within [%v, %v]", attempt, d, b.min, b.max)
			}
			// 100ms<<8 = 25.6s is the last un-jittered delay below the cap.
			if attempt <= 8 && d < prev {
				t.Fatalf("attempt %d: %v, below the previous %v", attempt, d, prev)
			}
			if attempt > 8 && d < b.max/2 {
				t.Fatalf("attempt %d: %v, want at the cap within [%v, %v]", attempt, d, b.max/2, b.max)
			}
			prev = d
		}
	}
	// The un-jittered delay doubles: attempt 3 is within (400ms, 800ms].
	if d := b.delay(3); d < 400*time.Millisecond || d > 800*time.Millisecond {
		t.Errorf("attempt 3: %v, want within [400ms, 800ms]", d)
	}
	// Far past the cap the delay neither overflows nor exceeds max.
	if d := b.delay(1 << 30); d < b.max/2 || d > b.max {
		t.Errorf("huge attempt: %v, want within [%v, %v]", d, b.max/2, b.max)
	}
	if d := (backoff{min: time.Second, max: time.Second}).delay(5); d != time.Second {
		t.Errorf("min == max: %v, want 1s", d)
	}
}
