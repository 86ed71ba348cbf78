package mail

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

	"signup/internal/account"
)

// kinds are the emails the outbox holds; each has a .txt and a .html
// template in web.Emails, both defining a "subject" block.
var kinds = account.MailKinds()

// emailData is what the email templates see.
type emailData struct {
	// SiteURL is the site's home page.
	SiteURL string
	// Link is the confirmation link (confirm only).
	Link string
	// ValidFor says how long Link works, "24 hours".
	ValidFor string
	// LoginURL is the sign-in page.
	LoginURL string
	// DeleteAfter is the date a dormant account will be deleted
	// (inactive_warning only), "9 January 2030".
	DeleteAfter string
}

// rendered is an email's content.
type rendered struct {
	Subject, Text, HTML string
}

// renderer holds the parsed email templates.
type renderer struct {
	text map[account.MailKind]*texttemplate.Template
	html map[account.MailKind]*htmltemplate.Template

	// placeholder stands for the token in renderToken's cached content:
	// random, of a token's alphabet and length, so it is escaped as a
	// token is (not at all) and appears nowhere else.
	placeholder string
	mu          sync.Mutex
	withToken   map[account.MailKind]tokenContent
}

// tokenContent is an email rendered with the placeholder for its token.
type tokenContent struct {
	data emailData // with the placeholder in Link
	out  rendered
}

// newRenderer parses every kind's templates from fsys (web.Emails layout)
// and renders each once with sample data, so a template that refers to a
// missing field fails at start, not at the first email.
func newRenderer(fsys fs.FS) (*renderer, error) {
	placeholder, _, err := account.NewToken()
	if err != nil {
		return nil, fmt.Errorf("placeholder token: %w", err)
	}
	r := &renderer{
		text:        make(map[account.MailKind]*texttemplate.Template),
		html:        make(map[account.MailKind]*htmltemplate.Template),
		placeholder: placeholder,
		withToken:   make(map[account.MailKind]tokenContent),
	}
	sample := emailData{
		SiteURL: "https://example.com/", Link: "https://example.com/confirm?token=x", ValidFor: "24 hours",
		LoginURL: "https://example.com/login", DeleteAfter: "1 January 2030",
	}
	for _, k := range kinds {
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
func (r *renderer) render(kind account.MailKind, data emailData) (rendered, error) {
	t, h := r.text[kind], r.html[kind]
	if t == nil || h == nil {
		return rendered{}, fmt.Errorf("render: no template for mail kind %q", kind)
	}
	var subject, text, html bytes.Buffer
	if err := t.ExecuteTemplate(&subject, "subject", data); err != nil {
		return rendered{}, fmt.Errorf("render %s subject: %w", kind, err)
	}
	if err := t.Execute(&text, data); err != nil {
		return rendered{}, fmt.Errorf("render %s text: %w", kind, err)
	}
	if err := h.Execute(&html, data); err != nil {
		return rendered{}, fmt.Errorf("render %s html: %w", kind, err)
	}
	return rendered{Subject: oneLine(subject.String()), Text: text.String(), HTML: html.String()}, nil
}

// renderToken renders kind for data with Link set to linkPrefix+token. A
// confirmation differs from the last one only by its token, so the
// templates run once with a placeholder token and each email is that
// content with the placeholder replaced: a token (base64url) is written
// as it is by every escaper of html/template and text/template, as is the
// placeholder, so the result is the templates' own output. Anything else
// (a token of other characters, new data) is rendered afresh.
func (r *renderer) renderToken(kind account.MailKind, data emailData, linkPrefix, token string) (rendered, error) {
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
			return rendered{}, err
		}
		c = tokenContent{data: data, out: out}
		r.mu.Lock()
		r.withToken[kind] = c
		r.mu.Unlock()
	}
	return rendered{
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

// humanDuration says d the way an email would: "24 hours", "7 days",
// "30 minutes".
func humanDuration(d time.Duration) string {
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
