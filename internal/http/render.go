package http

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"signup/internal/account"
	"signup/web"
)

// page is what every template receives.
type page struct {
	// Account is the signed-in account, or nil.
	Account *account.Account
	// Email is what the person typed, kept when a form comes back.
	Email string
	// Errors holds a message per form field.
	Errors map[string]string
	// Problem is a message for the whole form.
	Problem string
	// Outcome of a confirmation: confirmed, used, expired, invalid.
	Outcome string
	// Sent is true once a resend was accepted.
	Sent bool
	// NotConfirmed is true when a sign-in needs the address confirmed first.
	NotConfirmed bool
	// Title and Message fill the error page.
	Title, Message string
	// Notice is a one-time message about what just happened.
	Notice string
	// Token is the token of the link a page was opened with.
	Token string
	// NeedPassword is true when a confirmation asks for a password (its
	// link came from a resend, not a signup).
	NeedPassword bool
	// Form names the account-page form Errors belong to.
	Form string
	// Sessions are the signed-in account's sessions.
	Sessions []account.SessionInfo
	// Lifetimes say how long emailed links work.
	Lifetimes account.TokenLifetimes
}

// HasErrors reports whether the page shows a form that came back with
// errors; its title then starts with "Error: ".
func (p page) HasErrors() bool { return len(p.Errors) > 0 || p.Problem != "" }

// ValidFor says how long a link of purpose works: "24 hours".
func (p page) ValidFor(purpose string) string {
	return account.HumanDuration(p.Lifetimes.Of(account.TokenPurpose(purpose)))
}

// pageFuncs are the functions templates may call: siteName, the
// product's name (SiteConfig.SiteName), and formPage.
func pageFuncs(siteName string) template.FuncMap {
	return template.FuncMap{
		"siteName": func() string { return siteName },
		// formPage is p for one form of the account page that did not
		// come back: its own Form name, none of another form's errors or
		// input.
		"formPage": func(p page, form string) page {
			return page{Account: p.Account, Form: form, Lifetimes: p.Lifetimes}
		},
	}
}

// templates holds each page parsed with the layout, once, at start.
type templates map[string]*template.Template

// Every page may call siteName, the product's name (SiteConfig.SiteName).
func parseTemplates(siteName string) (templates, error) {
	names, err := fs.Glob(web.Pages, "templates/pages/*.html")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	// Pages may use the shared form blocks defined in signup and confirm.
	shared := []string{"templates/pages/signup.html", "templates/pages/confirm.html"}
	ts := templates{}
	for _, name := range names {
		files := []string{"templates/layout.html"}
		for _, s := range shared {
			if s != name {
				files = append(files, s)
			}
		}
		files = append(files, name)
		t, err := template.New("").Funcs(pageFuncs(siteName)).ParseFS(web.Pages, files...)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		ts[strings.TrimSuffix(path.Base(name), ".html")] = t
	}
	return ts, nil
}

// blank reports whether p carries nothing of a request: no account, no
// form state, no message. A page rendered from a blank p is the same for
// every request.
func (p page) blank() bool {
	return p.Account == nil && p.Email == "" && len(p.Errors) == 0 && p.Problem == "" && p.Outcome == "" &&
		!p.Sent && !p.NotConfirmed && p.Title == "" && p.Message == "" && p.Notice == "" && p.Token == "" &&
		!p.NeedPassword && p.Form == "" && p.Sessions == nil
}

// renderBlank renders every template with a blank page, once, at start:
// the empty forms a visitor who is not signed in gets are the same bytes
// every time, so they are served from memory rather than executed per
// request.
func renderBlank(ts templates, base page) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ts))
	for name, t := range ts {
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "layout", base); err != nil {
			return nil, fmt.Errorf("render %s: %w", name, err)
		}
		out[name] = buf.Bytes()
	}
	return out, nil
}

// Header values every page gets, shared read-only by every response
// rather than allocated for each.
var (
	htmlContentType = []string{"text/html; charset=utf-8"}
	noStore         = []string{"no-store"}
)

// render writes a page with a status, buffering so that a template error
// becomes a clean 500 rather than half a page. A blank page comes from
// memory (renderBlank).
func (s *Site) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.Account == nil {
		p.Account = accountFrom(r.Context())
	}
	if p.Notice == "" {
		if code, email := s.takeFlash(w, r); code != "" {
			p.Notice = flashText(code, email)
		}
	}
	p.Lifetimes = s.cfg.LinkLifetimes
	body, ok := s.blank[name]
	if !ok || !p.blank() {
		t, ok := s.tmpl[name]
		if !ok {
			s.logger.Error("render: no such template", "template", name)
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
			s.logger.Error("render", "template", name, "err", err)
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		body = buf.Bytes()
	}
	h := w.Header()
	h["Content-Type"] = htmlContentType[:1:1]
	h["Cache-Control"] = noStore[:1:1]
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client went away
}

// fail renders an error page; the message is meant for the person reading.
func (s *Site) fail(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	s.render(w, r, status, "error", page{Title: title, Message: message})
}

// serverError logs err with the request and shows a page that names no
// internals. An unreachable or too slow database (or a request that waited
// past its deadline) gets 503 with a try-again message.
func (s *Site) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if busy, ok := errors.AsType[*account.BusyError](err); ok {
		s.busy(w, r, busy)
		return
	}
	if isUnavailable(err) {
		s.logger.Warn("database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		s.fail(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
			"We cannot reach our database right now. Nothing was changed; please try again in a moment.")
		return
	}
	s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	s.fail(w, r, http.StatusInternalServerError, "Something went wrong",
		"An unexpected error stopped this request. It has been logged; please try again.")
}

// busy answers a request the password hasher refused because too many are
// waiting: 503 at once, with Retry-After saying when the queue ahead will
// have gone through.
func (s *Site) busy(w http.ResponseWriter, r *http.Request, err *account.BusyError) {
	s.logger.Warn("hashing queue full", "method", r.Method, "path", r.URL.Path, "retry_after", err.RetryAfter)
	secs := int((err.RetryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	s.fail(w, r, http.StatusServiceUnavailable, "Busy",
		"Many people are using this site at this moment. Nothing was changed; please try again in a minute.")
}
