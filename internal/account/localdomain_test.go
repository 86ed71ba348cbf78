package account_test

import (
	"errors"
	"testing"

	"signup/internal/account"
	"signup/internal/store/storetest"
)

// user@localhost (the single-label domain NormalizeEmail accepts) is
// refused unless the site runs on localhost itself; other single-label
// domains are refused always.
func TestLocalhostAddressesOnlyForALocalSite(t *testing.T) {
	db := storetest.New(t)
	for _, tc := range []struct {
		local bool
		email string
		ok    bool
	}{
		{false, "user@localhost", false},
		{false, "user@LOCALHOST", false},
		{false, "user@intranet", false},
		{false, "user@example.com", true},
		{true, "dev@localhost", true},
		{true, "dev@intranet", false},
	} {
		s := account.NewService(account.Config{
			Repo:           db.Accounts(),
			Hasher:         account.NewHasher(account.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 1),
			LocalhostEmail: tc.local,
		})
		_, err := s.Signup(t.Context(), tc.email, "a long enough password 1")
		var in *account.InputError
		if refused := errors.As(err, &in) && in.Fields["email"] != ""; refused == tc.ok || (tc.ok && err != nil) {
			t.Errorf("local site %v, signup %q: %v; want accepted %v", tc.local, tc.email, err, tc.ok)
		}
		if err := s.Resend(t.Context(), tc.email); (err == nil) != tc.ok {
			t.Errorf("local site %v, resend %q: %v; want accepted %v", tc.local, tc.email, err, tc.ok)
		}
	}
}
