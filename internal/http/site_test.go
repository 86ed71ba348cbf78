package http_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"signup/internal/account"
	apphttp "signup/internal/http"
	"signup/internal/store"
	"signup/internal/store/storetest"
	"signup/web"
)

// clock is a test clock that only moves when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// bundle is the site under test and what it runs on.
type bundle struct {
	srv      *httptest.Server
	db       *store.DB
	clock    *clock
	hasher   *account.Hasher
	accounts *account.Service
	queued   chan int64
}

type options struct {
	rateLimit      int
	baseURL        string
	params         account.Params
	trustedProxies []netip.Prefix
	concurrency    int
	observer       apphttp.RequestObserver
	requestTimeout time.Duration
	hasherOpts     []account.HasherOption
	// instanceOf, when set, makes this site a second instance of that
	// one: the same database and clock, its own process state.
	instanceOf *bundle
	// queue is the capacity of the channel the notifier fills (default
	// 1000); nothing drains it.
	queue int
	// dbLatency, when set, puts the database behind a proxy that delays
	// every chunk by it.
	dbLatency time.Duration
}

// cheapParams keep tests fast; the semaphore and timing tests use real ones.
var cheapParams = account.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func setup(t *testing.T, opts ...func(*options)) *bundle {
	t.Helper()
	o := options{baseURL: "http://localhost:8080", params: cheapParams, concurrency: 2, queue: 1000}
	for _, f := range opts {
		f(&o)
	}
	var db *store.DB
	clk := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	switch {
	case o.instanceOf != nil:
		db, clk = o.instanceOf.db, o.instanceOf.clock
	case o.dbLatency > 0:
		db = slowStore(t, o.dbLatency)
	default:
		db = storetest.New(t)
	}
	b := &bundle{db: db, clock: clk, queued: make(chan int64, o.queue)}
	b.hasher = account.NewHasher(o.params, o.concurrency, o.hasherOpts...)
	b.accounts = account.NewService(account.Config{
		Repo:     db.Accounts(),
		Hasher:   b.hasher,
		Now:      clk.Now,
		Notifier: account.NotifierFunc(func(id int64) { b.queued <- id }),
	})
	base, err := url.Parse(o.baseURL)
	if err != nil {
		t.Fatal(err)
	}
	site, err := apphttp.NewSite(apphttp.SiteConfig{
		Accounts:       b.accounts,
		BaseURL:        base,
		RateLimit:      o.rateLimit,
		RatePeriod:     time.Minute,
		TrustedProxies: o.trustedProxies,
		Ready: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if db.Ping(r.Context()) != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}),
		Observer:       o.observer,
		RequestTimeout: o.requestTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(site)
	t.Cleanup(b.srv.Close)
	return b
}

// slowStore opens a fresh database behind a proxy that delays every chunk
// by latency.
func slowStore(t *testing.T, latency time.Duration) *store.DB {
	t.Helper()
	_, proxied, proxy := storetest.URLBehindProxy(t)
	proxy.SetLatency(latency)
	db, err := store.New(proxied, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// client is a browser-like client: cookies, no automatic redirects.
func (b *bundle) client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *bundle) get(t *testing.T, c *http.Client, path string) response {
	t.Helper()
	req, err := http.NewRequest("GET", b.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

// post sends a same-origin form, as a browser does.
func (b *bundle) post(t *testing.T, c *http.Client, path string, form url.Values) response {
	t.Helper()
	return b.postRaw(t, c, path, "application/x-www-form-urlencoded", form.Encode(), nil)
}

func (b *bundle) postRaw(t *testing.T, c *http.Client, path, contentType, body string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest("POST", b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Origin", b.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, c, req)
}

// count returns the number of rows a query counts.
func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.db.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// signup posts the signup form and expects the "check your inbox" redirect.
func (b *bundle) signup(t *testing.T, c *http.Client, email, password string) {
	t.Helper()
	res := b.post(t, c, "/signup", url.Values{"email": {email}, "password": {password}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/signup/sent" {
		t.Fatalf("signup %s: status %d, location %q, body %s", email, res.status, res.header.Get("Location"), res.body)
	}
}

// token stores a confirmation token for an account that carries the
// password of its first signup, valid until expires.
func (b *bundle) token(t *testing.T, email string, expires time.Time) string {
	t.Helper()
	plain, hash, err := account.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.db.Pool().Exec(context.Background(), `
		INSERT INTO tokens (hash, account_id, purpose, password_hash, created_at, expires_at)
		SELECT $1, id, 'confirm', password_hash, $2, $3 FROM accounts WHERE email = $4`, hash, b.clock.Now(), expires, email)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// link does what the mail sender does for the oldest pending email of kind
// to address to: has the account domain's Composer write it (which mints
// its token and stores the hash), marks it sent, and returns the token
// its link carries.
func (b *bundle) link(t *testing.T, to string, kind account.MailKind) string {
	t.Helper()
	ctx := context.Background()
	var (
		l    = account.Letter{Kind: kind}
		acct *int64
		pw   *string
	)
	err := b.db.Pool().QueryRow(ctx, `
		SELECT o.id, o.account_id, coalesce(o.recipient, a.email), o.password_hash
		FROM outbox o LEFT JOIN accounts a ON a.id = o.account_id
		WHERE o.kind = $1 AND o.status = 'pending' AND lower(coalesce(o.recipient, a.email)) = lower($2)
		ORDER BY o.id LIMIT 1`, string(kind), to).Scan(&l.OutboxID, &acct, &l.To, &pw)
	if err != nil {
		t.Fatalf("no pending %s mail to %s: %v", kind, to, err)
	}
	if acct != nil {
		l.AccountID = *acct
	}
	if pw != nil {
		l.PasswordHash = *pw
	}
	base, _ := url.Parse("http://signup.test/")
	composer, err := account.NewComposer(account.ComposerConfig{
		Templates: web.Emails, Tokens: b.db.Accounts(), BaseURL: base, Now: b.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	composed, err := composer.Compose(ctx, []account.Letter{l})
	if err != nil || len(composed) != 1 || composed[0].Err != nil {
		t.Fatalf("compose %s: %v, %+v", kind, err, composed)
	}
	m := linkToken.FindStringSubmatch(composed[0].Email.Text)
	if m == nil {
		t.Fatalf("%s email has no link with a token:\n%s", kind, composed[0].Email.Text)
	}
	if _, err := b.db.Pool().Exec(ctx, `UPDATE outbox SET status = 'sent', sent_at = $2 WHERE id = $1`, l.OutboxID, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return m[1]
}

// linkToken finds the token of an email's link.
var linkToken = regexp.MustCompile(`\?token=([A-Za-z0-9_-]{43})`)

// confirm opens a confirmation link, checks it shows the button, and
// presses it; it returns the answer to the press.
func (b *bundle) confirm(t *testing.T, c *http.Client, token string) response {
	t.Helper()
	res := b.get(t, c, "/confirm?token="+token)
	if res.status != http.StatusOK {
		return res
	}
	mustContain(t, res.body, "Confirm my address", `action="/confirm"`)
	return b.post(t, c, "/confirm", url.Values{"token": {token}})
}

// confirmed signs up and confirms an account.
func (b *bundle) confirmed(t *testing.T, email, password string) {
	t.Helper()
	c := b.client(t)
	b.signup(t, c, email, password)
	if res := b.confirm(t, c, b.link(t, email, account.MailConfirm)); res.status != http.StatusOK {
		t.Fatalf("confirm: %d %s", res.status, res.body)
	}
}

// signIn signs in and returns the session cookie.
func (b *bundle) signIn(t *testing.T, c *http.Client, email, password string) *http.Cookie {
	t.Helper()
	res := b.post(t, c, "/login", url.Values{"email": {email}, "password": {password}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
		t.Fatalf("sign in: status %d, body %s", res.status, res.body)
	}
	for _, ck := range (&http.Response{Header: res.header}).Cookies() {
		return ck
	}
	t.Fatal("sign in set no cookie")
	return nil
}

const password = "correct horse battery staple"

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q:\n%s", w, body)
		}
	}
}
