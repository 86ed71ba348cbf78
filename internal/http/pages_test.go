package http_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"signup/internal/account"
)

func TestPagesRender(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.client(t)
	for path, wants := range map[string][]string{
		"/":                      {"Welcome", `href="/signup"`, `href="/login"`},
		"/signup":                {`<label for="email">Email address</label>`, `name="password"`, `autocomplete="new-password"`},
		"/signup/sent":           {"Check your inbox"},
		"/password/forgot":       {"Reset your password", `action="/password/forgot"`},
		"/password/reset":        {"This link is not valid"},
		"/account/email/confirm": {"This link is not valid"},
		"/favicon.ico":           {},
		"/login":                 {`<label for="password">Password</label>`, `action="/login"`},
		"/confirm/resend":        {"Send the confirmation again", `action="/confirm/resend"`},
		"/confirm":               {"This link is not valid"},
		"/nope":                  {"Page not found"},
	} {
		res := b.get(t, c, path)
		want := http.StatusOK
		switch path {
		case "/confirm", "/password/reset", "/account/email/confirm":
			want = http.StatusBadRequest
		case "/favicon.ico":
			want = http.StatusMovedPermanently
		case "/nope":
			want = http.StatusNotFound
		}
		if res.status != want {
			t.Errorf("GET %s: status %d, want %d", path, res.status, want)
		}
		mustContain(t, res.body, wants...)
		if path == "/favicon.ico" {
			continue
		}
		mustContain(t, res.body, `<html lang="en">`, `name="viewport"`, `rel="icon"`)
		h := res.header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: security headers %v", path, h)
		}
	}
	res := b.get(t, c, "/static/style.css")
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css: %d %s", res.status, res.header.Get("Content-Type"))
	}
	if res := b.get(t, c, "/healthz"); res.status != http.StatusOK {
		t.Errorf("healthz: %d", res.status)
	}
	if res := b.get(t, c, "/readyz"); res.status != http.StatusOK {
		t.Errorf("readyz: %d", res.status)
	}
}

func TestSignupConfirmSignInSignOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.client(t)
	b.signup(t, c, "Ada@Example.com", password)
	if n := b.count(t, `SELECT count(*) FROM accounts WHERE email = 'Ada@example.com' AND confirmed_at IS NULL`); n != 1 {
		t.Fatalf("accounts: %d", n)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE kind = 'confirm' AND status = 'pending'`); n != 1 {
		t.Fatalf("outbox: %d", n)
	}
	select {
	case <-b.queued:
	default:
		t.Fatal("signup did not notify the queue")
	}
	if n := b.count(t, `SELECT count(*) FROM accounts WHERE password_hash LIKE '$argon2id$v=19$%'`); n != 1 {
		t.Fatal("password not stored as an argon2id PHC string")
	}

	// Unconfirmed: sign-in offers the resend form.
	res := b.post(t, c, "/login", url.Values{"email": {"ada@example.com"}, "password": {password}})
	if res.status != http.StatusForbidden {
		t.Fatalf("unconfirmed sign in: %d", res.status)
	}
	mustContain(t, res.body, "not confirmed yet", `action="/confirm/resend"`, `value="ada@example.com"`)

	tok := b.link(t, "Ada@example.com", account.MailConfirm)
	// Opening the link, as a mail scanner does, confirms nothing.
	for range 2 {
		res = b.get(t, c, "/confirm?token="+tok)
		if res.status != http.StatusOK {
			t.Fatalf("confirm page: %d", res.status)
		}
		mustContain(t, res.body, "Confirm my address", `name="token"`)
	}
	if n := b.count(t, `SELECT count(*) FROM accounts WHERE confirmed_at IS NOT NULL`); n != 0 {
		t.Fatal("GET /confirm confirmed the account")
	}
	res = b.confirm(t, c, tok)
	if res.status != http.StatusOK {
		t.Fatalf("confirm: %d", res.status)
	}
	// Then the page offers sign-in with the address filled in.
	mustContain(t, res.body, "Your account is confirmed", `action="/login"`, `value="Ada@example.com"`)
	res = b.post(t, c, "/confirm", url.Values{"token": {tok}})
	if res.status != http.StatusConflict {
		t.Fatalf("second confirm: %d", res.status)
	}
	mustContain(t, res.body, "already confirmed", `href="/password/forgot"`)

	cookie := b.signIn(t, c, "ada@example.com", password)
	if cookie.Name != "session" || !cookie.HttpOnly || cookie.Secure || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
		t.Errorf("cookie %+v", cookie)
	}
	if n := b.count(t, `SELECT count(*) FROM sessions WHERE hash = sha256(convert_to($1, 'UTF8'))`, cookie.Value); n != 1 {
		t.Error("the session is not stored as the SHA-256 of its token")
	}
	res = b.get(t, c, "/")
	mustContain(t, res.body, "Your account", "Ada@example.com", `action="/logout"`)

	res = b.post(t, c, "/logout", nil)
	if res.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.status)
	}
	if n := b.count(t, `SELECT count(*) FROM sessions`); n != 0 {
		t.Errorf("sessions after logout: %d", n)
	}
	res = b.get(t, c, "/")
	mustContain(t, res.body, "Welcome")
}

func TestSecureCookieOverHTTPS(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *options) { o.baseURL = "https://example.com" })
	b.confirmed(t, "sec@example.com", password)
	req, _ := http.NewRequest("POST", b.srv.URL+"/login", strings.NewReader(url.Values{"email": {"sec@example.com"}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res := do(t, b.client(t), req)
	var ck *http.Cookie
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == "__Host-session" {
			ck = c
		}
	}
	if res.status != http.StatusSeeOther || ck == nil {
		t.Fatalf("sign in: %d %v", res.status, res.header)
	}
	if ck.Name != "__Host-session" || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Domain != "" || ck.Path != "/" {
		t.Errorf("cookie %+v", ck)
	}
	if !strings.Contains(res.header.Get("Strict-Transport-Security"), "max-age=") {
		t.Error("no HSTS over https")
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.client(t)
	b.signup(t, c, "tok@example.com", password)
	expired := b.token(t, "tok@example.com", b.clock.Now().Add(time.Hour))
	b.clock.Add(time.Hour) // expiry is exclusive: at the instant it is gone
	res := b.get(t, c, "/confirm?token="+expired)
	if res.status != http.StatusGone {
		t.Fatalf("expired: %d", res.status)
	}
	if res := b.post(t, c, "/confirm", url.Values{"token": {expired}}); res.status != http.StatusGone {
		t.Fatalf("expired, pressed: %d", res.status)
	}
	mustContain(t, res.body, "expired", `action="/confirm/resend"`)

	for _, garbage := range []string{"", "abc", strings.Repeat("A", 43), strings.Repeat("%ZZ", 20), "<script>"} {
		res := b.get(t, c, "/confirm?token="+url.QueryEscape(garbage))
		if res.status != http.StatusBadRequest {
			t.Errorf("garbage %q: %d", garbage, res.status)
		}
		mustContain(t, res.body, "not valid")
	}
	if n := b.count(t, `SELECT count(*) FROM accounts WHERE confirmed_at IS NOT NULL`); n != 0 {
		t.Fatalf("confirmed by a bad token: %d", n)
	}

	// A fresh token still works after the old one expired.
	fresh := b.token(t, "tok@example.com", b.clock.Now().Add(time.Hour))
	if res := b.confirm(t, c, fresh); res.status != http.StatusOK {
		t.Fatalf("fresh: %d", res.status)
	}
	// The expired one now says "already confirmed", not "expired".
	if res := b.get(t, c, "/confirm?token="+expired); res.status != http.StatusConflict {
		t.Fatalf("expired after confirm: %d", res.status)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.confirmed(t, "idle@example.com", password)
	c := b.client(t)
	b.signIn(t, c, "idle@example.com", password)

	// Used within the idle window, a session lives on.
	for range 3 {
		b.clock.Add(6 * 24 * time.Hour)
		if res := b.get(t, c, "/"); !strings.Contains(res.body, "idle@example.com") {
			t.Fatal("session ended while in use")
		}
	}
	// Idle past 7 days, it ends and the cookie is cleared.
	b.clock.Add(7*24*time.Hour + time.Second)
	res := b.get(t, c, "/")
	if strings.Contains(res.body, "idle@example.com") {
		t.Fatal("idle session still signed in")
	}
	if !strings.Contains(strings.Join(res.header.Values("Set-Cookie"), ";"), "Max-Age=0") {
		t.Error("expired session cookie not cleared")
	}

	// Used every day, a session still ends 30 days after sign-in.
	c = b.client(t)
	b.signIn(t, c, "idle@example.com", password)
	for day := 1; day < 30; day++ {
		b.clock.Add(24 * time.Hour)
		if res := b.get(t, c, "/"); !strings.Contains(res.body, "idle@example.com") {
			t.Fatalf("session ended on day %d", day)
		}
	}
	b.clock.Add(24 * time.Hour)
	if res := b.get(t, c, "/"); strings.Contains(res.body, "idle@example.com") {
		t.Fatal("session outlived its absolute expiry")
	}
}

func TestLastSeenAtMostHourly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.confirmed(t, "seen@example.com", password)
	lastSeen := func() time.Time {
		var ts time.Time
		if err := b.db.Pool().QueryRow(t.Context(), `SELECT last_seen_at FROM accounts`).Scan(&ts); err != nil {
			t.Fatal(err)
		}
		return ts.UTC()
	}
	start := b.clock.Now()
	b.clock.Add(30 * time.Minute)
	b.signIn(t, b.client(t), "seen@example.com", password)
	if got := lastSeen(); !got.Equal(start) {
		t.Errorf("last_seen_at moved within the hour: %v, want %v", got, start)
	}
	b.clock.Add(31 * time.Minute)
	b.signIn(t, b.client(t), "seen@example.com", password)
	if got := lastSeen(); !got.Equal(b.clock.Now()) {
		t.Errorf("last_seen_at %v, want %v", got, b.clock.Now())
	}
}

func TestNoEnumeration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.confirmed(t, "owner@example.com", password)
	b.signup(t, b.client(t), "pending@example.com", password)
	<-b.queued
	<-b.queued

	// Signup with a taken address: same redirect, no second account, and a
	// note to the owner instead of a confirmation.
	b.signup(t, b.client(t), "OWNER@example.com", "another good passphrase")
	if n := b.count(t, `SELECT count(*) FROM accounts WHERE lower(email) = 'owner@example.com'`); n != 1 {
		t.Fatalf("accounts: %d", n)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox o JOIN accounts a ON a.id = o.account_id WHERE a.email = 'owner@example.com' AND kind = 'signup_attempt'`); n != 1 {
		t.Fatalf("signup_attempt mails: %d", n)
	}
	// A taken but unconfirmed address gets a fresh confirmation.
	b.signup(t, b.client(t), "pending@example.com", password)
	if n := b.count(t, `SELECT count(*) FROM outbox o JOIN accounts a ON a.id = o.account_id WHERE a.email = 'pending@example.com' AND kind = 'confirm'`); n != 2 {
		t.Fatalf("confirm mails: %d", n)
	}

	// Resend: identical pages for unknown, unconfirmed and confirmed.
	var bodies []string
	for _, email := range []string{"nobody@example.com", "pending@example.com", "owner@example.com"} {
		res := b.post(t, b.client(t), "/confirm/resend", url.Values{"email": {email}})
		if res.status != http.StatusOK {
			t.Fatalf("resend %s: %d", email, res.status)
		}
		bodies = append(bodies, res.body)
	}
	// The page names the address typed, and nothing else differs.
	bodies[0] = strings.ReplaceAll(bodies[0], "nobody@", "X@")
	bodies[1] = strings.ReplaceAll(bodies[1], "pending@", "X@")
	bodies[2] = strings.ReplaceAll(bodies[2], "owner@", "X@")
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("resend pages differ:\n%s\n---\n%s\n---\n%s", bodies[0], bodies[1], bodies[2])
	}

	// Sign-in: unknown address and wrong password look the same.
	unknown := b.post(t, b.client(t), "/login", url.Values{"email": {"nobody@example.com"}, "password": {password}})
	wrong := b.post(t, b.client(t), "/login", url.Values{"email": {"nobody@example.com"}, "password": {"wrong password!"}})
	wrongOwner := b.post(t, b.client(t), "/login", url.Values{"email": {"owner@example.com"}, "password": {"wrong password!"}})
	if unknown.status != http.StatusUnauthorized || wrongOwner.status != http.StatusUnauthorized {
		t.Fatalf("statuses %d %d", unknown.status, wrongOwner.status)
	}
	if strings.ReplaceAll(wrongOwner.body, "owner@", "nobody@") != wrong.body || wrong.body != unknown.body {
		t.Errorf("sign-in answers differ for unknown and known addresses")
	}
	mustContain(t, unknown.body, "email address or password is incorrect", `value="nobody@example.com"`)
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.client(t)
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	const ct = "application/x-www-form-urlencoded"
	cases := []struct {
		name, path, contentType, body string
		header                        http.Header
		status                        int
		want                          string
	}{
		{"malformed email", "/signup", ct, form("email", "not-an-address", "password", password), nil, 400, "Enter an email address"},
		{"overlong email", "/signup", ct, form("email", strings.Repeat("a", 250)+"@example.com", "password", password), nil, 400, "too long"},
		{"CRLF in email", "/signup", ct, form("email", "a@example.com\r\nBcc: victim@example.com", "password", password), nil, 400, "line break"},
		{"NUL in password", "/signup", ct, form("email", "a@example.com", "password", "pass\x00word123"), nil, 400, "control character"},
		{"CRLF in resend", "/confirm/resend", ct, form("email", "a@example.com\r\n"), nil, 400, "line break"},
		{"NUL in login", "/login", ct, form("email", "a@exa\x00mple.com", "password", password), nil, 400, "control character"},
		{"10 MB body", "/signup", ct, "email=a%40example.com&password=" + strings.Repeat("x", 10<<20), nil, 413, "larger than this form accepts"},
		{"wrong content type", "/signup", "application/json", `{"email":"a@example.com","password":"` + password + `"}`, nil, 415, "urlencoded"},
		{"multipart", "/signup", "multipart/form-data; boundary=x", "--x--", nil, 415, "urlencoded"},
		{"no content type", "/login", "", form("email", "a@example.com", "password", password), nil, 415, "urlencoded"},
		{"missing password", "/signup", ct, form("email", "a@example.com"), nil, 400, "Enter a password"},
		{"missing email", "/signup", ct, form("password", password), nil, 400, "Enter your email address"},
		{"missing login email", "/login", ct, form("password", password), nil, 400, "Enter your email address"},
		{"empty resend", "/confirm/resend", ct, "", nil, 400, "Enter your email address"},
		{"repeated field", "/signup", ct, form("email", "a@example.com", "email", "b@example.com", "password", password), nil, 400, "more than once"},
		{"invalid UTF-8", "/signup", ct, "email=a%40example.com&password=" + url.QueryEscape("pass\xff\xfeword"), nil, 400, "not valid text"},
		{"invalid UTF-8 email", "/signup", ct, "email=" + url.QueryEscape("\xc3(@example.com") + "&password=x", nil, 400, "not valid text"},
		{"bad escape", "/signup", ct, "email=%zz&password=%", nil, 400, "could not be read"},
		{"short password", "/signup", ct, form("email", "a@example.com", "password", "short"), nil, 400, "at least 8"},
		{"common password", "/signup", ct, form("email", "a@example.com", "password", "password123"), nil, 400, "too common"},
		{"cross-origin POST", "/signup", ct, form("email", "a@example.com", "password", password),
			http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, 403, "sent from another site"},
		{"cross-origin login", "/login", ct, form("email", "a@example.com", "password", password),
			http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, 403, "sent from another site"},
		{"cross-origin, Origin only", "/confirm/resend", ct, form("email", "a@example.com"),
			http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": nil}, 403, "sent from another site"},
	}
	for _, tc := range cases {
		res := b.postRaw(t, c, tc.path, tc.contentType, tc.body, tc.header)
		if res.status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, res.status, tc.status)
		}
		if !strings.Contains(res.body, tc.want) {
			t.Errorf("%s: page lacks %q:\n%s", tc.name, tc.want, res.body)
		}
		if strings.Contains(res.body, "store:") || strings.Contains(res.body, "account:") {
			t.Errorf("%s: page shows an internal error", tc.name)
		}
	}
	for _, table := range []string{"accounts", "outbox", "tokens", "sessions"} {
		if n := b.count(t, "SELECT count(*) FROM "+table); n != 0 {
			t.Errorf("%s has %d rows after bad input", table, n)
		}
	}
	// The typed email is kept when the form comes back.
	res := b.post(t, c, "/signup", url.Values{"email": {"kept@example.com"}, "password": {"short"}})
	mustContain(t, res.body, `value="kept@example.com"`, `aria-invalid="true"`, `id="password-error"`)
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *options) {
		o.rateLimit = 3
		o.trustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	post := func(ip, email string) int {
		body := url.Values{"email": {email}, "password": {"wrong password"}}.Encode()
		return b.postRaw(t, b.client(t), "/login", "application/x-www-form-urlencoded", body, from(ip)).status
	}
	// Per IP: the fourth POST from one client is refused, whatever the address.
	for i := range 3 {
		if s := post("203.0.113.1", "a"+string(rune('a'+i))+"@example.com"); s != http.StatusUnauthorized {
			t.Fatalf("POST %d: %d", i, s)
		}
	}
	res := b.postRaw(t, b.client(t), "/login", "application/x-www-form-urlencoded",
		url.Values{"email": {"z@example.com"}, "password": {"x"}}.Encode(), from("203.0.113.1"))
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("fourth POST: %d", res.status)
	}
	mustContain(t, res.body, "Too many attempts", "wait a minute")
	if res.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Another route from the same IP has its own budget.
	if s := b.post(t, b.client(t), "/confirm/resend", url.Values{"email": {"x@example.com"}}).status; s != http.StatusOK {
		t.Errorf("resend after login limit: %d", s)
	}
	// Per address: one address from many IPs is refused after the limit.
	for i := range 3 {
		if s := post("198.51.100."+string(rune('1'+i)), "victim@example.com"); s != http.StatusUnauthorized {
			t.Fatalf("victim POST %d: %d", i, s)
		}
	}
	if s := post("198.51.100.9", "Victim@Example.com"); s != http.StatusTooManyRequests {
		t.Fatalf("fourth POST for one address: %d", s)
	}
	// An untrusted peer's X-Forwarded-For is ignored: b's peer is trusted here,
	// so check the chain is read from the right, stopping at untrusted hops.
	if s := post("10.9.9.9, 203.0.113.1", "fresh@example.com"); s != http.StatusTooManyRequests {
		t.Errorf("spoofed left-most X-Forwarded-For escaped the limit: %d", s)
	}
}

func TestHashingSemaphore(t *testing.T) {
	t.Parallel()
	params := account.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	limit := runtime.NumCPU()
	b := setup(t, func(o *options) {
		o.params = params
		o.concurrency = limit
		// Not the shedding of a queue that would wait too long (burst_test.go
		// has that): on a machine busy enough to time one of these cheap
		// hashes at a few hundred milliseconds, 200 in a queue looks like a
		// long wait, and the tail was refused with the Busy page.
		o.hasherOpts = []account.HasherOption{account.WithMaxWait(0)}
	})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			email := "burst" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "-" + string(rune('a'+i/26)) + "@example.com"
			res := b.post(t, b.client(t), "/signup", url.Values{"email": {email}, "password": {password}})
			if res.status != http.StatusSeeOther {
				errs <- res.body
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("signup failed: %s", e)
	}
	if got := b.hasher.MaxInFlight(); got > limit || got < 1 {
		t.Errorf("at most %d hashes should run at once; saw %d", limit, got)
	}
	if n2 := b.count(t, `SELECT count(*) FROM accounts`); n2 != n {
		t.Errorf("accounts: %d, want %d", n2, n)
	}
}

// TestSlowDatabaseAnswers503InTime: a request whose database work outlasts
// RequestTimeout is abandoned and answered 503 with Retry-After, instead of
// waiting for as long as the database takes. The database takes a minute
// to answer anything, so a request that waited for it cannot pass for one
// that was abandoned, however slow the machine.
func TestSlowDatabaseAnswers503InTime(t *testing.T) {
	t.Parallel()
	const timeout, dbLatency = 300 * time.Millisecond, time.Minute
	b := setup(t, func(o *options) { o.requestTimeout = timeout; o.dbLatency = dbLatency })
	c := b.client(t)
	for _, path := range []string{"/signup", "/login", "/confirm/resend"} {
		start := time.Now()
		res := b.post(t, c, path, url.Values{"email": {"slow@example.com"}, "password": {password}})
		took := time.Since(start)
		if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
			t.Errorf("POST %s with a slow database: status %d, Retry-After %q", path, res.status, res.header.Get("Retry-After"))
		}
		mustContain(t, res.body, "Temporarily unavailable")
		t.Logf("POST %s answered in %v with a %v request timeout", path, took, timeout)
		if took >= dbLatency/2 {
			t.Errorf("POST %s took %v with a %v request timeout and a database answering after %v: it waited for the database",
				path, took, timeout, dbLatency)
		}
	}
}

// The empty forms are rendered once at start; a signed-in visitor and a
// form sent back with errors must still get their own page.
func TestBlankPagesStayPerVisitor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.confirmed(t, "grace@example.com", password)
	signedIn, anonymous := b.client(t), b.client(t)
	b.signIn(t, signedIn, "grace@example.com", password)

	// Signed-in visitors to the signup and sign-in forms go to their account.
	for _, path := range []string{"/signup", "/login"} {
		if res := b.get(t, signedIn, path); res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
			t.Errorf("signed in, GET %s: %d to %q", path, res.status, res.header.Get("Location"))
		}
	}
	b.get(t, signedIn, "/") // takes the sign-in notice
	for range 2 {
		res := b.get(t, signedIn, "/confirm/resend")
		mustContain(t, res.body, "grace@example.com", `action="/logout"`)
		if strings.Contains(res.body, "You are signed in.") {
			t.Error("the sign-in notice showed twice")
		}
		res = b.get(t, anonymous, "/confirm/resend")
		if strings.Contains(res.body, "grace@example.com") || strings.Contains(res.body, `action="/logout"`) {
			t.Fatalf("an anonymous visitor got the signed-in page:\n%s", res.body)
		}
		res = b.get(t, anonymous, "/signup")
		if strings.Contains(res.body, "grace@example.com") || strings.Contains(res.body, `action="/logout"`) {
			t.Fatalf("an anonymous visitor got the signed-in page:\n%s", res.body)
		}
		mustContain(t, res.body, `href="/login"`, `name="password"`)
		if res.header.Get("Content-Type") != "text/html; charset=utf-8" || res.header.Get("Cache-Control") != "no-store" {
			t.Errorf("blank page headers %v", res.header)
		}
	}
	res := b.post(t, anonymous, "/signup", url.Values{"email": {"not an address"}, "password": {password}})
	if res.status != http.StatusBadRequest {
		t.Fatalf("bad signup: status %d", res.status)
	}
	mustContain(t, res.body, `value="not an address"`, `aria-invalid="true"`)
	if res := b.get(t, anonymous, "/signup"); strings.Contains(res.body, "not an address") || strings.Contains(res.body, "aria-invalid") {
		t.Errorf("the blank form kept another request's input:\n%s", res.body)
	}
}
