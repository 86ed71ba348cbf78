package http_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"testing"
)

// An IPv6 client holds a whole /64: the per-IP limit counts the /64, or a
// client could take a fresh address for every attempt.
func TestRateLimitKeysIPv6By64(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *options) {
		o.rateLimit = 3
		o.trustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	post := func(ip, email string) int {
		body := url.Values{"email": {email}, "password": {"wrong password"}}.Encode()
		return b.postRaw(t, b.client(t), "/login", "application/x-www-form-urlencoded", body,
			http.Header{"X-Forwarded-For": {ip}}).status
	}
	for i, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:ffff"} {
		if s := post(ip, "v6-"+string(rune('a'+i))+"@example.com"); s != http.StatusUnauthorized {
			t.Fatalf("POST %d from %s: %d", i, ip, s)
		}
	}
	if s := post("2001:db8:1:2::99", "v6-z@example.com"); s != http.StatusTooManyRequests {
		t.Fatalf("fourth POST from the same /64: %d, want 429", s)
	}
	if s := post("2001:db8:1:3::1", "v6-y@example.com"); s != http.StatusUnauthorized {
		t.Fatalf("POST from the next /64: %d, want its own budget", s)
	}
	// IPv4 stays keyed by the address.
	if s := post("203.0.113.7", "v4-a@example.com"); s != http.StatusUnauthorized {
		t.Fatalf("POST from IPv4: %d", s)
	}
}
