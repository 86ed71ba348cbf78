package account

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"time"
)

// Letter is an outbox row as the domain needs it to write the email: the
// sender hands over the rows it claimed and delivers what comes back.
type Letter struct {
	// OutboxID is the outbox row.
	OutboxID int64
	Kind     MailKind
	// AccountID is the account the email is about; 0 when the account is
	// gone (a goodbye sent after its deletion).
	AccountID int64
	// To is the recipient: the row's own address when it has one (a new
	// address to confirm, an account already deleted), else the account's.
	To string
	// WarnedAt is when the account's dormancy warning was queued; zero if
	// none is.
	WarnedAt time.Time
	// PasswordHash is, for a confirmation a signup asked for, that
	// signup's password hash, which its token carries; empty otherwise.
	PasswordHash string
}

// Composed is the email for one Letter, or why there is none.
type Composed struct {
	Letter Letter
	Email  Email
	// Err is set when this letter cannot be written: it never will be (an
	// unknown kind, a template that fails), so the row is to be failed.
	Err error
}

// Email is the content of one email.
type Email struct {
	Subject, Text, HTML string
}

// IssuedToken is a token minted for an email, as stored: its hash and
// what it grants. The token itself is never stored.
type IssuedToken struct {
	AccountID int64
	Purpose   TokenPurpose
	// Hash is the SHA-256 of the token (NewToken's hash).
	Hash []byte
	// PasswordHash is, for a confirmation, the password hash of the signup
	// that asked for it; empty when a resend asked for it, and the person
	// chooses a password when confirming.
	PasswordHash string
	// Email is, for an email change, the new address.
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// TokenStore keeps the hashes of minted tokens.
type TokenStore interface {
	// CreateTokens stores every token in one transaction: all, or none. A
	// new token of a purpose that SupersedesOlder kills the older live
	// ones of the same account and purpose.
	CreateTokens(ctx context.Context, tokens []IssuedToken) error
}

// ComposerConfig is what a Composer needs.
type ComposerConfig struct {
	// Templates holds templates/email/<kind>.txt and .html (web.Emails).
	// Required.
	Templates fs.FS
	// Tokens stores the hashes of the tokens minted for emails. Required.
	Tokens TokenStore
	// BaseURL is the site's public URL (BASE_URL): links start with it.
	// Required, absolute.
	BaseURL *url.URL
	// Lifetimes is how long a link of each purpose works; zero fields take
	// the defaults (RESET_TTL sets Reset).
	Lifetimes TokenLifetimes
	// InactiveWarning is how long after the dormancy warning an account is
	// deleted, to tell the date. Default 168h.
	InactiveWarning time.Duration
	// SiteName is the product's name (SITE_NAME), in the subject and body
	// of every email. Default "Signup".
	SiteName string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Composer writes the emails of outbox rows: it mints their tokens, stores
// the hashes and renders the templates. The mail sender only delivers.
type Composer struct {
	cfg      ComposerConfig
	tmpl     *renderer
	siteURL  string
	loginURL string
	base     url.URL
}

// NewComposer parses the templates of every kind (and renders each once, so
// a broken template fails at start) and returns a Composer.
func NewComposer(cfg ComposerConfig) (*Composer, error) {
	if cfg.Templates == nil || cfg.Tokens == nil {
		return nil, errors.New("composer: Templates and Tokens are required")
	}
	if cfg.BaseURL == nil || !cfg.BaseURL.IsAbs() || cfg.BaseURL.Host == "" {
		return nil, errors.New("composer: BaseURL must be an absolute URL")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SiteName == "" {
		cfg.SiteName = "Signup"
	}
	if cfg.InactiveWarning <= 0 {
		cfg.InactiveWarning = 168 * time.Hour
	}
	tmpl, err := newRenderer(cfg.Templates, cfg.SiteName)
	if err != nil {
		return nil, fmt.Errorf("composer: %w", err)
	}
	base := *cfg.BaseURL
	base.RawQuery, base.Fragment, base.User = "", "", nil
	home := base
	if home.Path == "" {
		home.Path = "/"
	}
	return &Composer{cfg: cfg, tmpl: tmpl, siteURL: home.String(), loginURL: base.JoinPath("login").String(), base: base}, nil
}

// Compose writes the email of each letter, in order. Tokens are minted for
// the kinds that carry one and stored in one transaction; an error means no
// token was stored and no email written: the letters can be tried again.
func (c *Composer) Compose(ctx context.Context, letters []Letter) ([]Composed, error) {
	now := c.cfg.Now()
	out := make([]Composed, len(letters))
	plain := make([]string, len(letters))
	var issued []IssuedToken
	for i, l := range letters {
		out[i].Letter = l
		k, ok := mailKinds[l.Kind]
		switch {
		case !ok:
			out[i].Err = fmt.Errorf("compose: unknown mail kind %q", l.Kind)
			continue
		case k.token == "":
			continue
		case l.AccountID == 0:
			out[i].Err = fmt.Errorf("compose %s: a token needs an account", l.Kind)
			continue
		}
		p, tok, _, err := mintToken(l, now, c.cfg.Lifetimes)
		if err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
		plain[i] = p
		issued = append(issued, tok)
	}
	if len(issued) > 0 {
		if err := c.cfg.Tokens.CreateTokens(ctx, issued); err != nil {
			return nil, fmt.Errorf("compose: store tokens: %w", err)
		}
	}
	for i := range out {
		if out[i].Err != nil {
			continue
		}
		out[i].Email, out[i].Err = c.render(out[i].Letter, plain[i], now)
	}
	return out, nil
}

// render writes one letter, with its token when its kind has one.
func (c *Composer) render(l Letter, token string, now time.Time) (Email, error) {
	k := mailKinds[l.Kind]
	data := emailData{SiteURL: c.siteURL, LoginURL: c.loginURL}
	if k.deleteAfter {
		warned := l.WarnedAt
		if warned.IsZero() {
			warned = now
		}
		// The last day no run can delete it, whatever the schedule.
		data.DeleteAfter = humanDate(KeptThrough(warned, c.cfg.InactiveWarning))
	}
	if k.token == "" {
		return c.tmpl.render(l.Kind, data)
	}
	data.ValidFor = HumanDuration(c.cfg.Lifetimes.Of(k.token))
	prefix := c.base.JoinPath(k.linkPath).String() + "?token="
	return c.tmpl.renderToken(l.Kind, data, prefix, url.QueryEscape(token))
}

// KeptThrough is the last whole day (UTC, at 00:00) that an account warned
// at warnedAt is certain to be kept: a run deletes it only once warnedAt is
// more than warning in the past, so every run until the end of that day,
// whatever the schedule, leaves it. The dormancy warning names this date.
func KeptThrough(warnedAt time.Time, warning time.Duration) time.Time {
	return warnedAt.UTC().Add(warning - 24*time.Hour).Truncate(24 * time.Hour)
}
