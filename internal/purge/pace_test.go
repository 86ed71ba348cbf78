package purge

import (
	"testing"
	"time"
)

func TestRestFollowsTheBatchesCost(t *testing.T) {
	for _, tc := range []struct {
		pause, took, want time.Duration
	}{
		{0, 0, 0},
		{0, 300 * time.Millisecond, 100 * time.Millisecond}, // works three quarters of the time
		{0, 3 * time.Second, time.Second},                   // a slowed batch rests longer
		{time.Second, 300 * time.Millisecond, time.Second},  // a configured Pause is the floor
	} {
		p := &Purger{cfg: Config{Pause: tc.pause}}
		if got := p.restAfter(tc.took); got != tc.want {
			t.Errorf("Pause %v, batch took %v: rest %v, want %v", tc.pause, tc.took, got, tc.want)
		}
	}
}
