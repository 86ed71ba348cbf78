package ops

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sessionCookie is the dashboard's cookie once signed in with the token.
const sessionCookie = "ops_session"

// sessionTTL is how long a sign-in lasts.
const sessionTTL = 12 * time.Hour

// tokenAuth checks OPS_TOKEN: a bearer header for scripts, or the cookie
// the sign-in form sets for a browser. The cookie holds an expiry and an
// HMAC of it keyed by the token, never the token: changing the token signs
// every browser out.
type tokenAuth struct {
	token []byte
	now   func() time.Time
	log   *slog.Logger
	login *template.Template
}

// mac is the cookie's signature of expiry.
func (a *tokenAuth) mac(expiry string) string {
	m := hmac.New(sha256.New, a.token)
	m.Write([]byte("signup ops session\x00" + expiry))
	return hex.EncodeToString(m.Sum(nil))
}

// ok reports whether r carries the token or a valid session cookie.
func (a *tokenAuth) ok(r *http.Request) bool {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		return strings.EqualFold(scheme, "Bearer") &&
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), a.token) == 1
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	expiry, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(a.mac(expiry))) {
		return false
	}
	unix, err := strconv.ParseInt(expiry, 10, 64)
	return err == nil && a.now().Unix() < unix
}

// require refuses requests without the token: a browser asking for the
// dashboard is sent to the sign-in form, anything else gets 401.
func (a *tokenAuth) require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.ok(r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodGet && r.URL.Path == "/" && r.Header.Get("Authorization") == "" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="ops"`)
		http.Error(w, "Unauthorized: this listener needs its access token", http.StatusUnauthorized)
	})
}

// loginForm shows the sign-in form.
func (a *tokenAuth) loginForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, http.StatusOK, false)
}

// signIn checks the token from the form and sets the session cookie:
// HttpOnly, SameSite=Strict, Secure when the request came over TLS.
func (a *tokenAuth) signIn(w http.ResponseWriter, r *http.Request) {
	tok := r.PostFormValue("token")
	if subtle.ConstantTimeCompare([]byte(tok), a.token) != 1 {
		a.log.Warn("ops: sign-in with a wrong token refused", "remote", r.RemoteAddr)
		a.render(w, http.StatusUnauthorized, true)
		return
	}
	expiry := a.now().Add(sessionTTL)
	e := strconv.FormatInt(expiry.Unix(), 10)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: e + "." + a.mac(e), Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// signOut clears the session cookie.
func (a *tokenAuth) signOut(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (a *tokenAuth) render(w http.ResponseWriter, status int, wrong bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := a.login.ExecuteTemplate(w, "login", struct{ Wrong bool }{wrong}); err != nil {
		a.log.Error("ops: render sign-in page", "err", err)
	}
}
