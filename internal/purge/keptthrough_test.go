package purge_test

import (
	"testing"
	"time"

	domain "signup/internal/account"
	"signup/internal/purge"
)

// The warning email names the last day the account is kept. The email said
// "deleted after 9 January" while the 03:00 run on 9 January deleted it.
// Here a real run at the very end of the named day keeps the account, and
// one a microsecond after the warning period deletes it, so the date is
// neither broken nor more than a day early.
func TestKeptThroughIsKept(t *testing.T) {
	cases := []struct {
		warned time.Time
		want   string
	}{
		// The case: warned at a 03:00 run, deleted at the 03:00
		// run seven days later; 9 January is not safe, 8 January is.
		{time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC), "2030-01-08"},
		{time.Date(2030, 1, 2, 3, 0, 0, 1000, time.UTC), "2030-01-08"},
		{time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC), "2030-01-08"},
		{time.Date(2030, 1, 2, 23, 59, 59, 0, time.UTC), "2030-01-08"},
		// In another zone, the day is still UTC's.
		{time.Date(2030, 1, 2, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "2030-01-07"},
	}
	for _, tc := range cases {
		t.Run(tc.warned.String(), func(t *testing.T) {
			day := domain.KeptThrough(tc.warned, inactiveWarning)
			p, b := setup(t, purge.Config{})
			a := confirmed(tc.warned.Add(-inactiveRetention))
			a.warned = tc.warned
			id := b.addAccount(t, a)
			b.addMail(t, id, "inactive_warning", "sent", tc.warned)

			b.clock.AdvanceTo(day.Add(24 * time.Hour)) // the end of the named day
			if got := runOnce(t, p, purge.Options{}); got.Dormant != 0 || !b.accountExists(t, id) {
				t.Fatalf("a run at the end of %s deleted the account warned at %v", day.Format(time.DateOnly), tc.warned)
			}
			b.clock.AdvanceTo(tc.warned.Add(inactiveWarning + time.Microsecond))
			if got := runOnce(t, p, purge.Options{}); got.Dormant != 1 || b.accountExists(t, id) {
				t.Fatalf("a run just after the warning period kept the account: %+v", got)
			}
			if got := day.Format(time.DateOnly); got != tc.want || day.Location() != time.UTC {
				t.Fatalf("KeptThrough(%v) = %v, want %s UTC", tc.warned, day, tc.want)
			}
		})
	}
}
