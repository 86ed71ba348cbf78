package http

import (
	"net/http"
	"net/url"
	"strings"

	"signup/internal/account"
)

// flashCookie carries a one-time notice to the next page: what just
// happened (sign-in, a setting changed), and the address it concerns, if
// any. It holds nothing secret: a code from flashNotices and an address
// the visitor typed.
const flashCookie = "notice"

// flashNotices are the notices a flash can show, by code. %s is the
// address, for the notices that name one.
var flashNotices = map[string]string{
	"signed-in":        "You are signed in.",
	"signed-out":       "You are signed out.",
	"password-changed": "Your password was changed. Every other browser signed in to your account was signed out.",
	"password-reset":   "Your new password is set and you are signed in. Every other browser was signed out.",
	"email-requested":  "We sent a link to %s. Your account keeps its current address until you follow it.",
	"email-changed":    "Your account's email address is now %s.",
	"session-revoked":  "That browser was signed out.",
	"others-revoked":   "Every other browser was signed out.",
	"account-deleted":  "Your account was deleted. Goodbye!",
	"signup":           "",
}

// setFlash leaves a notice for the next page the browser opens.
func (s *Site) setFlash(w http.ResponseWriter, code, email string) {
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: url.QueryEscape(code + "|" + email), Path: "/", MaxAge: 300,
		HttpOnly: true, Secure: s.cookie.secure, SameSite: http.SameSiteLaxMode,
	})
}

// takeFlash reads and clears the notice left for this page. The address
// is returned only if it is a valid one, so a forged cookie can show
// nothing but a notice of ours.
func (s *Site) takeFlash(w http.ResponseWriter, r *http.Request) (code, email string) {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return "", ""
	}
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cookie.secure, SameSite: http.SameSiteLaxMode,
	})
	v, err := url.QueryUnescape(c.Value)
	if err != nil {
		return "", ""
	}
	code, email, _ = strings.Cut(v, "|")
	if _, ok := flashNotices[code]; !ok {
		return "", ""
	}
	if email != "" {
		if addr, err := account.NormalizeEmail(email); err != nil || addr != email {
			email = ""
		}
	}
	return code, email
}

// flashText is the notice for code, with email in it where it names one.
func flashText(code, email string) string {
	t := flashNotices[code]
	if strings.Contains(t, "%s") {
		if email == "" {
			email = "your new address"
		}
		t = strings.Replace(t, "%s", email, 1)
	}
	return t
}
