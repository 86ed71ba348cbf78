package http

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/httprate"

	"signup/internal/account"
)

// limits holds the rate limiters: per client IP and route, and per email
// address and route (so one address cannot be hammered from many IPs).
type limits struct {
	perIPLimiter    *httprate.RateLimiter
	perEmailLimiter *httprate.RateLimiter
	tooMany         http.HandlerFunc
}

// newLimits returns limiters allowing n requests per period; n == 0 turns
// them off.
func newLimits(n int, period time.Duration, tooMany http.HandlerFunc) *limits {
	l := &limits{tooMany: tooMany}
	if n > 0 {
		l.perIPLimiter = httprate.NewRateLimiter(n, period, httprate.WithLimitHandler(tooMany))
		l.perEmailLimiter = httprate.NewRateLimiter(n, period, httprate.WithLimitHandler(tooMany))
	}
	return l
}

// perIP limits a route per client IP.
func (l *limits) perIP(route string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if l.perIPLimiter == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if l.perIPLimiter.RespondOnLimit(w, r, route+"\x00"+rateKey(clientIPFrom(r.Context()))) {
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// email counts a request against an address on a route and, past the
// limit, answers 429 and returns true. Unknown and known addresses are
// counted alike, so the limit reveals nothing. The key is the normalized
// address: " User@Example.COM " counts as user@example.com.
func (l *limits) email(w http.ResponseWriter, r *http.Request, route, address string) bool {
	if l.perEmailLimiter == nil || address == "" {
		return false
	}
	return l.perEmailLimiter.RespondOnLimit(w, r, route+"\x00"+account.LimitKey(address))
}

// tooMany is the friendly 429 page.
func (s *Site) tooMany(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, http.StatusTooManyRequests, "Too many attempts",
		"You have tried this several times in a short while. Please wait a minute, then try again.")
}

// rateKey is the client a per-IP limit counts: the IPv4 address, or the
// /64 of an IPv6 one, since one subscriber usually holds a whole /64 and
// could otherwise take a fresh address for every request.
func rateKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
