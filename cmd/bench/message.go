package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"signup/internal/devmail"
	appmail "signup/internal/mail"
)

// sample is an email the product sent, used as the body of the baselines'
// messages so that they carry the same bytes.
type sample struct {
	subject, text, html string
	// token is the confirmation token in its link, "" if none was found.
	token string
	size  int
}

// firstMessage waits for the product's first email to srv.
func firstMessage(ctx context.Context, srv *devmail.Server) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	msgs, err := srv.Wait(ctx, func(m []devmail.Message) bool { return len(m) > 0 })
	if err != nil {
		return sample{}, fmt.Errorf("wait for the first email: %w", err)
	}
	m := msgs[0]
	s := sample{subject: m.Subject, text: m.Text, html: m.HTML, size: len(m.Raw)}
	for _, l := range m.Links {
		if u, err := url.Parse(l); err == nil && u.Query().Get("token") != "" {
			s.token = u.Query().Get("token")
			break
		}
	}
	return s, nil
}

// message builds an email like the product's (multipart/alternative, text
// then HTML, Date, Message-ID, Auto-Submitted) with go-mail, carrying s's
// content with token in place of the sample's.
func (s sample) message(to, token string) (*gomail.Msg, error) {
	text, html := s.text, s.html
	if s.token != "" && token != "" {
		text = strings.ReplaceAll(text, s.token, token)
		html = strings.ReplaceAll(html, s.token, token)
	}
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := m.From(appmail.DefaultFrom); err != nil {
		return nil, err
	}
	if err := m.To(to); err != nil {
		return nil, err
	}
	m.Subject(s.subject)
	m.SetDate()
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	m.SetMessageIDWithValue(hex.EncodeToString(id) + "@localhost")
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, html)
	return m, nil
}

// smtpClient is a go-mail client for srv with the options the product's
// sender uses for a plain smtp:// URL (opportunistic STARTTLS).
func smtpClient(srv *devmail.Server) (*gomail.Client, error) {
	return smtpClientFor(srv.SMTPURL())
}

// smtpClientFor is smtpClient for an SMTP URL.
func smtpClientFor(smtpURL string) (*gomail.Client, error) {
	s, err := appmail.ParseSMTPURL(smtpURL)
	if err != nil {
		return nil, err
	}
	return gomail.NewClient(s.Host,
		gomail.WithPort(s.Port),
		gomail.WithTimeout(30*time.Second),
		gomail.WithTLSPolicy(gomail.TLSOpportunistic))
}
