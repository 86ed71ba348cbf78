package account

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
)

// emailData is what the email templates see.
type emailData struct {
	// SiteName is the product's name (SITE_NAME), in every subject and body.
	SiteName string
	// SiteURL is the site's home page.
	SiteURL string
	// Link is the link that carries the email's token (kinds with a
	// token only).
	Link string
	// ValidFor says how long Link works, "24 hours".
	ValidFor string
	// LoginURL is the sign-in page.
	LoginURL string
	// DeleteAfter is the last day (UTC) a dormant account is certain to
	// be kept, "8 January 2030": it may be deleted from the next day on
	// (inactive_warning only; see KeptThrough).
	DeleteAfter string
}

// renderer holds the parsed email templates.
type renderer struct {
	text     map[MailKind]*texttemplate.Template
	html     map[MailKind]*htmltemplate.Template
	siteName string // every email's SiteName

	// placeholder stands for the token in renderToken's cached content:
	// random, of a token's alphabet and length, so it is escaped as a
	// token is (not at all) and appears nowhere else.
	placeholder string
	mu          sync.Mutex
	withToken   map[MailKind]tokenContent
}

// tokenContent is an email Email with the placeholder for its token.
type tokenContent struct {
	data emailData // with the placeholder in Link
	out  Email
}

// newRenderer parses every kind's templates from fsys (web.Emails layout)
// and renders each once with sample data, so a template that refers to a
// missing field fails at start, not at the first email. Every email names
// the product siteName.
func newRenderer(fsys fs.FS, siteName string) (*renderer, error) {
	placeholder, _, err := NewToken()
	if err != nil {
		return nil, fmt.Errorf("placeholder token: %w", err)
	}
	r := &renderer{
		text:        make(map[MailKind]*texttemplate.Template),
		html:        make(map[MailKind]*htmltemplate.Template),
		siteName:    siteName,
		placeholder: placeholder,
		withToken:   make(map[MailKind]tokenContent),
	}
	sample := emailData{
		SiteURL: "https://example.com/", Link: "https://example.com/confirm?token=x", ValidFor: "24 hours",
		LoginURL: "https://example.com/login", DeleteAfter: "1 January 2030",
	}
	for k := range mailKinds {
		base := "templates/email/" + string(k)
		t, err := texttemplate.ParseFS(fsys, base+".txt")
		if err != nil {
			return nil, fmt.Errorf("parse %s email text: %w", k, err)
		}
		h, err := htmltemplate.ParseFS(fsys, base+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s email html: %w", k, err)
		}
		if t.Lookup("subject") == nil {
			return nil, fmt.Errorf("parse %s email: %s.txt has no subject block", k, k)
		}
		r.text[k], r.html[k] = t, h
		if _, err := r.render(k, sample); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// render produces kind's subject, text and HTML for data.
func (r *renderer) render(kind MailKind, data emailData) (Email, error) {
	data.SiteName = r.siteName
	t, h := r.text[kind], r.html[kind]
	if t == nil || h == nil {
		return Email{}, fmt.Errorf("render: no template for mail kind %q", kind)
	}
	var subject, text, html bytes.Buffer
	if err := t.ExecuteTemplate(&subject, "subject", data); err != nil {
		return Email{}, fmt.Errorf("render %s subject: %w", kind, err)
	}
	if err := t.Execute(&text, data); err != nil {
		return Email{}, fmt.Errorf("render %s text: %w", kind, err)
	}
	if err := h.Execute(&html, data); err != nil {
		return Email{}, fmt.Errorf("render %s html: %w", kind, err)
	}
	return Email{Subject: oneLine(subject.String()), Text: text.String(), HTML: html.String()}, nil
}

// renderToken renders kind for data with Link set to linkPrefix+token. A
// confirmation differs from the last one only by its token, so the
// templates run once with a placeholder token and each email is that
// content with the placeholder replaced: a token (base64url) is written
// as it is by every escaper of html/template and text/template, as is the
// placeholder, so the result is the templates' own output. Anything else
// (a token of other characters, new data) is Email afresh.
func (r *renderer) renderToken(kind MailKind, data emailData, linkPrefix, token string) (Email, error) {
	if !plainToken(token) {
		data.Link = linkPrefix + token
		return r.render(kind, data)
	}
	data.Link = linkPrefix + r.placeholder
	r.mu.Lock()
	c, ok := r.withToken[kind]
	r.mu.Unlock()
	if !ok || c.data != data {
		out, err := r.render(kind, data)
		if err != nil {
			return Email{}, err
		}
		c = tokenContent{data: data, out: out}
		r.mu.Lock()
		r.withToken[kind] = c
		r.mu.Unlock()
	}
	return Email{
		Subject: strings.ReplaceAll(c.out.Subject, r.placeholder, token),
		Text:    strings.ReplaceAll(c.out.Text, r.placeholder, token),
		HTML:    strings.ReplaceAll(c.out.HTML, r.placeholder, token),
	}, nil
}

// plainToken reports whether s is made of base64url characters only,
// which no template escaper changes.
func plainToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// oneLine collapses runs of white space, line breaks included, into single
// spaces: a subject is one header line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// HumanDuration says d the way an email or a page would: "24 hours", "7 days",
// "30 minutes".
func HumanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s"
	}
	const day = 24 * time.Hour
	switch {
	case d >= 2*day && d%day == 0:
		return plural(int64(d/day), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return d.String()
}

// humanDate is a date in an email: "9 January 2030" (UTC).
func humanDate(t time.Time) string { return t.UTC().Format("2 January 2006") }
