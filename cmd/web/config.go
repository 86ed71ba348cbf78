package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/robfig/cron/v3"

	"signup/internal/hosted"
	apphttp "signup/internal/http"
	appmail "signup/internal/mail"
	"signup/internal/ops"
)

// config is everything `web` reads from its environment and flags.
type config struct {
	DatabaseURL          string
	SMTP                 appmail.SMTPServer
	SMTPRoots            *x509.CertPool // system roots plus SMTP_CA_FILE; nil: system roots
	SMTPHELO             string         // empty: derived from BASE_URL
	MailFrom             string
	MailReturnPath       string
	MailMaxAge           time.Duration
	SiteName             string
	HTTPAddr             string
	OpsAddr              string
	OpsHosts             []string
	OpsToken             string
	OpsMetricsAuth       bool
	OpsInsecure          bool
	MailOnFailure        hosted.Policy
	PurgeOnFailure       hosted.Policy
	BaseURL              *url.URL
	PurgeSchedule        string
	PurgeTZ              *time.Location
	UnconfirmedRetention time.Duration
	InactiveRetention    time.Duration
	InactiveWarning      time.Duration
	PurgeMaxShare        float64
	MailRetryMin         time.Duration
	MailRetryMax         time.Duration
	MailCooldown         time.Duration
	ResetTTL             time.Duration
	RateLimit            rateLimit
	TrustedProxies       []netip.Prefix
	ShutdownTimeout      time.Duration
	StopDelay            time.Duration
	RequestTimeout       time.Duration
	HashQueueWait        time.Duration
	StartTimeout         time.Duration
	LogFormat            string
}

// rateLimit is N requests per Period; Off disables limits.
type rateLimit struct {
	N      int
	Period time.Duration
	Off    bool
}

func (r rateLimit) String() string {
	if r.Off {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.N, map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Period])
}

// setting is one variable: its name, default and how to parse it.
type setting struct {
	name, def, usage string
	parse            func(v string) error
}

// secrets are the variables whose values are never shown as a flag's
// default in the usage text: they may carry a password or a token.
var secrets = map[string]bool{"DATABASE_URL": true, "SMTP_URL": true, "OPS_TOKEN": true}

// emptyDisables are the variables that, set to the empty string, turn
// something off rather than take their default.
var emptyDisables = map[string]bool{"OPS_ADDR": true}

// lookupEnv reads a variable and says whether it is set, as os.LookupEnv.
type lookupEnv func(name string) (string, bool)

// configError lists every problem found, one line each; `web` exits 2.
type configError struct{ problems []string }

func (e *configError) Error() string { return strings.Join(e.problems, "\n") }

// needs says which settings a subcommand requires.
type needs struct{ smtp bool }

// maxSiteName bounds SITE_NAME, which goes into every subject line.
const maxSiteName = 64

// loadConfig reads the environment, then flags of the same name
// (--database-url for DATABASE_URL), which override it. Every problem is
// reported, each on one line naming the variable.
func loadConfig(fs *flag.FlagSet, args []string, getenv lookupEnv, need needs, stderr io.Writer) (*config, []string, error) {
	c := &config{}
	var from *mail.Address
	settings := []setting{
		{"DATABASE_URL", "", "PostgreSQL connection URL (required)", func(v string) error {
			if v == "" {
				return errors.New("is required (for example postgres://user@localhost:5432/signup)")
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				return errors.New("is not a postgres:// URL")
			}
			c.DatabaseURL = v
			return nil
		}},
		{"SMTP_URL", "", "smtp://[user:pass@]host:port[?starttls=required] or smtps://… (required)", func(v string) error {
			if !need.smtp && v == "" {
				return nil
			}
			if v == "" {
				return errors.New("is required (for example smtp://localhost:1025)")
			}
			s, err := appmail.ParseSMTPURL(v)
			c.SMTP = s
			return err
		}},
		{"SMTP_CA_FILE", "", "PEM bundle trusted besides the system roots for the SMTP server's certificate", func(v string) error {
			if v == "" {
				return nil
			}
			pem, err := os.ReadFile(v)
			if err != nil {
				return errors.New("cannot be read")
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return errors.New("holds no PEM certificate")
			}
			c.SMTPRoots = pool
			return nil
		}},
		{"SMTP_HELO", "", "EHLO name (default: the host of BASE_URL when a domain name, else the machine's FQDN, else localhost)", func(v string) error {
			c.SMTPHELO = v
			if v == "" {
				return nil
			}
			return appmail.CheckHELO(v)
		}},
		{"MAIL_RETURN_PATH", "", "envelope sender, where bounces go (default: the address of MAIL_FROM)", func(v string) error {
			if v == "" {
				c.MailReturnPath = ""
				return nil
			}
			a, err := mail.ParseAddress(v)
			if err != nil || a.Name != "" || a.Address != v {
				return errors.New("is not a bare email address (for example bounces@example.com)")
			}
			c.MailReturnPath = v
			return nil
		}},
		{"MAIL_MAX_AGE", "120h", "an email still undelivered after this is failed; outages spend no attempts", durationInto(&c.MailMaxAge)},
		{"MAIL_FROM", "no-reply@localhost", "sender address, a name allowed", func(v string) error {
			a, err := mail.ParseAddress(v)
			if err != nil {
				return errors.New("is not an email address (for example Signup <no-reply@example.com>)")
			}
			from = a
			return nil
		}},
		{"SITE_NAME", "Signup", "the product's name, in pages, email subjects and bodies and the From display name", func(v string) error {
			v = strings.TrimSpace(v)
			switch {
			case v == "":
				return errors.New("is empty; want the product's name (for example Signup)")
			case strings.ContainsFunc(v, unicode.IsControl):
				return errors.New("must be one line of printable characters")
			case utf8.RuneCountInString(v) > maxSiteName:
				return fmt.Errorf("is longer than %d characters", maxSiteName)
			}
			c.SiteName = v
			return nil
		}},
		{"HTTP_ADDR", ":8080", "address of the site", func(v string) error {
			c.HTTPAddr = v
			return checkAddr(v)
		}},
		{"OPS_ADDR", "127.0.0.1:9090", "address of metrics, status page and pprof; empty disables", func(v string) error {
			c.OpsAddr = v
			if v == "" {
				return nil
			}
			return checkAddr(v)
		}},
		{"OPS_HOSTS", "", "comma-separated Host names the ops listener answers to (default: the host of OPS_ADDR, localhost, 127.0.0.1, [::1])", func(v string) error {
			c.OpsHosts = nil
			for _, h := range strings.Split(v, ",") {
				if h = strings.TrimSpace(h); h == "" {
					continue
				}
				if strings.ContainsAny(h, "/ ") || strings.Contains(h, "://") {
					return fmt.Errorf("has %q, which is not a host name (for example ops.internal or 10.0.0.7)", h)
				}
				c.OpsHosts = append(c.OpsHosts, h)
			}
			return nil
		}},
		{"OPS_TOKEN", "", "access token of the ops listener: every route but /metrics needs it when set", func(v string) error {
			if v != "" && len(v) < 16 {
				return errors.New("is too short: want at least 16 characters (for example from openssl rand -hex 32)")
			}
			c.OpsToken = v
			return nil
		}},
		{"OPS_METRICS_AUTH", "false", "true makes /metrics need OPS_TOKEN too", boolInto(&c.OpsMetricsAuth)},
		{"OPS_INSECURE", "false", "true serves the ops listener on a non-loopback address without OPS_TOKEN", boolInto(&c.OpsInsecure)},
		{"MAIL_ON_FAILURE", "stop", "when the mail sender fails: stop (the app), restart (capped backoff) or ignore", policyInto(&c.MailOnFailure)},
		{"PURGE_ON_FAILURE", "stop", "when the purger fails: stop (the app), restart (capped backoff) or ignore", policyInto(&c.PurgeOnFailure)},
		{"BASE_URL", "http://localhost:8080", "public URL of the site, for links in email", func(v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				return errors.New("is not an absolute http(s) URL (for example https://example.com)")
			}
			u.Path = strings.TrimSuffix(u.Path, "/")
			c.BaseURL = u
			return nil
		}},
		{"PURGE_SCHEDULE", "0 3 * * *", "cron expression or descriptor (@daily, @every 10m)", func(v string) error {
			if _, err := cron.ParseStandard(v); err != nil {
				return fmt.Errorf("is not a cron expression or descriptor: %v", err)
			}
			c.PurgeSchedule = v
			return nil
		}},
		{"PURGE_TZ", "UTC", "time zone of PURGE_SCHEDULE", func(v string) error {
			loc, err := time.LoadLocation(v)
			if err != nil {
				return errors.New("is not a known time zone (for example UTC or Europe/Paris)")
			}
			c.PurgeTZ = loc
			return nil
		}},
		{"UNCONFIRMED_RETENTION", "168h", "delete accounts unconfirmed for longer", durationInto(&c.UnconfirmedRetention)},
		{"INACTIVE_RETENTION", "8760h", "delete confirmed accounts without sign-in for longer", durationInto(&c.InactiveRetention)},
		{"INACTIVE_WARNING", "168h", "warn a dormant account this long before deletion", durationInto(&c.InactiveWarning)},
		{"PURGE_MAX_SHARE", "0.5", "abort a purge deleting or warning more than this share of accounts (runs of 100 or fewer are never stopped)", func(v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f > 0 && f <= 1) {
				return errors.New("is not a share between 0 and 1 (for example 0.5)")
			}
			c.PurgeMaxShare = f
			return nil
		}},
		{"MAIL_RETRY_MIN", "5s", "wait before the first retry of an email the server deferred (4xx to RCPT or DATA); doubles each time", durationInto(&c.MailRetryMin)},
		{"MAIL_RETRY_MAX", "1h", "longest wait between retries of a deferred email", durationInto(&c.MailRetryMax)},
		{"MAIL_COOLDOWN", "1m", "least time between two visitor-triggered emails of one kind to one address (and 10 a day)", durationInto(&c.MailCooldown)},
		{"RESET_TTL", "1h", "how long a password-reset link works", durationInto(&c.ResetTTL)},
		{"RATE_LIMIT", "20/m", "POSTs per client IP and route: N/s, N/m, N/h, or off", func(v string) error {
			r, err := parseRateLimit(v)
			c.RateLimit = r
			return err
		}},
		{"TRUSTED_PROXIES", "", "comma-separated CIDRs whose X-Forwarded-For is believed", func(v string) error {
			c.TrustedProxies = nil
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				p, err := netip.ParsePrefix(s)
				if err != nil {
					a, aerr := netip.ParseAddr(s)
					if aerr != nil {
						return fmt.Errorf("has %q, which is not a CIDR (for example 10.0.0.0/8)", s)
					}
					p = netip.PrefixFrom(a, a.BitLen())
				}
				c.TrustedProxies = append(c.TrustedProxies, p.Masked())
			}
			return nil
		}},
		{"REQUEST_TIMEOUT", "10s", "how long a page may wait for the database before answering 503", durationInto(&c.RequestTimeout)},
		{"HASH_QUEUE_WAIT", "15s", "the longest expected wait for a password-hashing turn; a signup or sign-in that would wait longer gets 503 at once", durationInto(&c.HashQueueWait)},
		{"SHUTDOWN_TIMEOUT", "30s", "how long a graceful stop may take", durationInto(&c.ShutdownTimeout)},
		{"STOP_DELAY", "0s", "after the first signal, how long the site keeps serving, not ready, before stopping", func(v string) error {
			if d, err := time.ParseDuration(v); err == nil && d == 0 {
				c.StopDelay = 0
				return nil
			}
			if err := durationInto(&c.StopDelay)(v); err != nil {
				return fmt.Errorf("is not a duration of zero or more: %q (for example 5s)", v)
			}
			return nil
		}},
		{"START_TIMEOUT", "15s", "how long each service may take to start", durationInto(&c.StartTimeout)},
		{"LOG_FORMAT", "", "text or json (default: text on a terminal, else json)", func(v string) error {
			switch v {
			case "", "text", "json":
				c.LogFormat = v
				return nil
			}
			return errors.New("is not text or json")
		}},
	}

	values := make(map[string]*string, len(settings))
	for _, s := range settings {
		v, set := getenv(s.name)
		if v == "" && !(set && emptyDisables[s.name]) {
			v = s.def
		}
		values[s.name] = &v
		if secrets[s.name] {
			value := v // StringVar writes its default through the pointer
			fs.StringVar(values[s.name], flagName(s.name), "", s.usage+" ($"+s.name+")")
			*values[s.name] = value
			continue
		}
		fs.StringVar(values[s.name], flagName(s.name), v, s.usage+" ($"+s.name+")")
	}
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return nil, nil, &configError{problems: []string{err.Error()}}
	}
	var problems []string
	for _, s := range settings {
		if err := s.parse(*values[s.name]); err != nil {
			problems = append(problems, fmt.Sprintf("%s %v", s.name, err))
		}
	}
	if c.MailCooldown > 24*time.Hour {
		problems = append(problems, "MAIL_COOLDOWN must be at most 24h (the mail limits' window is a day)")
	}
	if c.InactiveWarning >= c.InactiveRetention && c.InactiveRetention > 0 {
		problems = append(problems, "INACTIVE_WARNING must be shorter than INACTIVE_RETENTION")
	}
	if c.MailRetryMin > c.MailRetryMax && c.MailRetryMax > 0 {
		problems = append(problems, "MAIL_RETRY_MIN must not exceed MAIL_RETRY_MAX")
	}
	if c.OpsAddr != "" && len(c.OpsHosts) == 0 {
		c.OpsHosts = defaultOpsHosts(c.OpsAddr)
	}
	if c.OpsAddr != "" && c.OpsToken == "" && !c.OpsInsecure && !loopback(c.OpsAddr) {
		problems = append(problems, fmt.Sprintf("OPS_TOKEN is required when OPS_ADDR (%s) is not a loopback address: set one, or OPS_INSECURE=true to serve metrics, the dashboard and pprof to the network without it", c.OpsAddr))
	}
	if c.OpsMetricsAuth && c.OpsToken == "" {
		problems = append(problems, "OPS_METRICS_AUTH=true needs OPS_TOKEN")
	}
	// A signup may wait for its hashing turn and then work for up to
	// REQUEST_TIMEOUT: all of it must end before the server gives up on
	// the response, or the person gets a cut connection instead of a page.
	if c.HashQueueWait+c.RequestTimeout >= apphttp.DefaultWriteTimeout && c.HashQueueWait > 0 && c.RequestTimeout > 0 {
		problems = append(problems, fmt.Sprintf("HASH_QUEUE_WAIT plus REQUEST_TIMEOUT must be under %v, the longest a response may take",
			apphttp.DefaultWriteTimeout))
	}
	if len(problems) > 0 {
		return nil, nil, &configError{problems: problems}
	}
	// The From display name is the product's unless MAIL_FROM has its own.
	if from.Name == "" {
		from.Name = c.SiteName
	}
	c.MailFrom = from.String()
	return c, fs.Args(), nil
}

// flagName turns DATABASE_URL into database-url.
func flagName(env string) string { return strings.ReplaceAll(strings.ToLower(env), "_", "-") }

// durationInto parses a Go duration ("90m", "168h") or whole days ("7d"),
// which must be positive.
func durationInto(dst *time.Duration) func(string) error {
	return func(v string) error {
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		*dst = d
		return nil
	}
}

func parseDuration(v string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("is not a positive duration: %q (for example 30s, 168h or 7d)", v)
	}
	return d, nil
}

func parseRateLimit(v string) (rateLimit, error) {
	if v == "off" {
		return rateLimit{Off: true}, nil
	}
	n, unit, ok := strings.Cut(v, "/")
	count, err := strconv.Atoi(n)
	periods := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}
	period, known := periods[unit]
	if !ok || err != nil || count < 1 || !known {
		return rateLimit{}, fmt.Errorf("is %q; want N/s, N/m, N/h (for example 20/m) or off", v)
	}
	return rateLimit{N: count, Period: period}, nil
}

func checkAddr(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("is %q; want host:port or :port", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("has port %q; want 0-65535", port)
	}
	return nil
}

// boolInto parses true or false.
func boolInto(dst *bool) func(string) error {
	return func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("is %q; want true or false", v)
		}
		*dst = b
		return nil
	}
}

// policyInto parses a failure policy: stop, restart or ignore.
func policyInto(dst *hosted.Policy) func(string) error {
	return func(v string) error {
		switch v {
		case "stop":
			*dst = hosted.StopHost
		case "restart":
			*dst = hosted.Restart
		case "ignore":
			*dst = hosted.Ignore
		default:
			return fmt.Errorf("is %q; want stop, restart or ignore", v)
		}
		return nil
	}
}

// loopback reports whether addr (host:port) listens on loopback only: an
// empty host or an unspecified address listens everywhere.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(host)
}

// loopbackHost reports whether host is localhost (or a name under it) or a
// loopback IP address.
func loopbackHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

// defaultOpsHosts are the Host names the ops listener answers to unless
// OPS_HOSTS says otherwise: the host of its address (a name or an IP, not
// the empty or unspecified one) and the loopback names.
func defaultOpsHosts(addr string) []string {
	hosts := append([]string(nil), ops.DefaultHosts...)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return hosts
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return hosts
	}
	for _, h := range hosts {
		if strings.EqualFold(h, host) {
			return hosts
		}
	}
	return append(hosts, host)
}
