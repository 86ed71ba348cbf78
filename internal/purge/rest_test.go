package purge

import (
	"testing"
	"time"
)

func TestRestFollowsTheBatchesCost(t *testing.T) {
	for _, tc := range []struct {
		pause, took time.Duration
		busy        bool
		want        time.Duration
	}{
		{0, 0, true, 0},
		{0, 300 * time.Millisecond, true, 300 * time.Millisecond}, // works half the time
		{0, 3 * time.Second, true, 3 * time.Second},               // a slowed batch rests longer
		{0, 300 * time.Millisecond, false, 0},                     // nobody waited: no rest
		{time.Second, 300 * time.Millisecond, true, time.Second},  // a configured Pause is the floor
		{time.Second, 300 * time.Millisecond, false, time.Second}, // busy or not
	} {
		p := &Purger{cfg: Config{Pause: tc.pause}}
		if got := p.restAfter(tc.took, tc.busy); got != tc.want {
			t.Errorf("Pause %v, batch took %v, others busy %v: rest %v, want %v", tc.pause, tc.took, tc.busy, got, tc.want)
		}
	}
}
