package http

import (
	"errors"
	"net/http"

	"signup/internal/account"
)

func (s *Site) home(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		s.fail(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
		return
	}
	if accountFrom(r.Context()) != nil {
		s.accountPage(w, r, http.StatusOK, page{})
		return
	}
	s.render(w, r, http.StatusOK, "home", page{})
}

// signedInGoHome sends a signed-in visitor to their account page instead
// of a form meant for visitors; it reports whether it did.
func (s *Site) signedInGoHome(w http.ResponseWriter, r *http.Request) bool {
	if accountFrom(r.Context()) == nil {
		return false
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return true
}

func (s *Site) signupForm(w http.ResponseWriter, r *http.Request) {
	if s.signedInGoHome(w, r) {
		return
	}
	s.render(w, r, http.StatusOK, "signup", page{})
}

// signup answers the same for a new address and a taken one: a redirect to
// the "check your inbox" page after the same work.
func (s *Site) signup(w http.ResponseWriter, r *http.Request) {
	vals, fe := decodeForm(r, "email", "password")
	if fe != nil {
		s.formFailed(w, r, "signup", fe, vals["email"])
		return
	}
	if s.limits.email(w, r, "signup", vals["email"]) {
		return
	}
	_, err := s.accounts.Signup(r.Context(), vals["email"], vals["password"])
	var in *account.InputError
	switch {
	case errors.As(err, &in):
		s.render(w, r, http.StatusBadRequest, "signup", page{Email: vals["email"], Errors: in.Fields})
	case err != nil:
		s.serverError(w, r, err)
	default:
		addr, _ := account.NormalizeEmail(vals["email"])
		s.setFlash(w, "signup", addr)
		http.Redirect(w, r, "/signup/sent", http.StatusSeeOther)
	}
}

// signupSent is "check your inbox", naming the address the signup gave.
func (s *Site) signupSent(w http.ResponseWriter, r *http.Request) {
	_, email := s.takeFlash(w, r)
	s.render(w, r, http.StatusOK, "check-inbox", page{Email: email})
}

// confirmPage checks a confirmation link's token and shows one button that
// confirms; nothing is spent by opening the link, so a mail scanner that
// follows it confirms nothing.
func (s *Site) confirmPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	st, err := s.accounts.CheckToken(r.Context(), account.PurposeConfirm, token)
	if err != nil {
		s.tokenProblem(w, r, "confirm", err, st.Email)
		return
	}
	s.render(w, r, http.StatusOK, "confirm", page{Outcome: "ready", Token: token, NeedPassword: !st.HasPassword})
}

// confirm spends a confirmation token; the page then offers sign-in with
// the address filled in.
func (s *Site) confirm(w http.ResponseWriter, r *http.Request) {
	vals, fe := decodeForm(r, "token")
	if fe != nil {
		s.fail(w, r, fe.Status, "This link is not valid", "The link may have been cut short or mistyped. Copy the whole link from the email.")
		return
	}
	password, fe := optionalField(r, "password")
	if fe != nil {
		s.render(w, r, fe.Status, "confirm", page{Outcome: "ready", Token: vals["token"], NeedPassword: true, Errors: fe.Fields})
		return
	}
	acct, err := s.accounts.Confirm(r.Context(), vals["token"], password)
	var in *account.InputError
	switch {
	case errors.As(err, &in):
		s.render(w, r, http.StatusBadRequest, "confirm", page{Outcome: "ready", Token: vals["token"], NeedPassword: true, Errors: in.Fields})
	case err != nil:
		s.tokenProblem(w, r, "confirm", err, "")
	default:
		s.render(w, r, http.StatusOK, "confirm", page{Outcome: "confirmed", Email: acct.Email})
	}
}

// tokenProblem renders a link's page for a token that cannot be used:
// invalid, used, expired, superseded, or, for a confirmation, an account
// confirmed already. email, when known, fills the form that asks for a
// new link.
func (s *Site) tokenProblem(w http.ResponseWriter, r *http.Request, tmpl string, err error, email string) {
	p := page{Email: email}
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, account.ErrAlreadyConfirmed):
		p.Outcome, status = "already", http.StatusConflict
	case errors.Is(err, account.ErrTokenUsed):
		p.Outcome, status = "used", http.StatusConflict
	case errors.Is(err, account.ErrTokenSuperseded):
		p.Outcome, status = "superseded", http.StatusGone
	case errors.Is(err, account.ErrTokenExpired):
		p.Outcome, status = "expired", http.StatusGone
	case errors.Is(err, account.ErrEmailTaken):
		p.Outcome, status = "taken", http.StatusConflict
	case errors.Is(err, account.ErrTokenInvalid):
		p.Outcome = "invalid"
	default:
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, status, tmpl, p)
}

func (s *Site) resendForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "resend", page{})
}

// resend answers the same whether or not the address has an account.
func (s *Site) resend(w http.ResponseWriter, r *http.Request) {
	vals, fe := decodeForm(r, "email")
	if fe != nil {
		s.formFailed(w, r, "resend", fe, vals["email"])
		return
	}
	if s.limits.email(w, r, "resend", vals["email"]) {
		return
	}
	err := s.accounts.Resend(r.Context(), vals["email"])
	var in *account.InputError
	switch {
	case errors.As(err, &in):
		s.render(w, r, http.StatusBadRequest, "resend", page{Email: vals["email"], Errors: in.Fields})
	case err != nil:
		s.serverError(w, r, err)
	default:
		addr, _ := account.NormalizeEmail(vals["email"])
		s.render(w, r, http.StatusOK, "resend", page{Sent: true, Email: addr})
	}
}

func (s *Site) loginForm(w http.ResponseWriter, r *http.Request) {
	if s.signedInGoHome(w, r) {
		return
	}
	s.render(w, r, http.StatusOK, "login", page{Email: r.URL.Query().Get("email")})
}

// login answers an unknown address and a wrong password alike.
func (s *Site) login(w http.ResponseWriter, r *http.Request) {
	vals, fe := decodeForm(r, "email", "password")
	if fe != nil {
		s.formFailed(w, r, "login", fe, vals["email"])
		return
	}
	if s.limits.email(w, r, "login", vals["email"]) {
		return
	}
	token, _, err := s.accounts.SignIn(r.Context(), vals["email"], vals["password"], r.UserAgent())
	var in *account.InputError
	switch {
	case errors.As(err, &in):
		s.render(w, r, http.StatusBadRequest, "login", page{Email: vals["email"], Errors: in.Fields})
	case errors.Is(err, account.ErrInvalidCredentials):
		s.render(w, r, http.StatusUnauthorized, "login", page{Email: vals["email"],
			Problem: "The email address or password is incorrect."})
	case errors.Is(err, account.ErrNotConfirmed):
		s.render(w, r, http.StatusForbidden, "login", page{Email: vals["email"], NotConfirmed: true})
	case err != nil:
		s.serverError(w, r, err)
	default:
		s.startSession(w, r, token)
		s.setFlash(w, "signed-in", "")
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

// startSession sets the cookie of a new session, ending the one the
// browser had, if any.
func (s *Site) startSession(w http.ResponseWriter, r *http.Request, token string) {
	if old, err := r.Cookie(s.cookie.name()); err == nil {
		if err := s.accounts.SignOut(r.Context(), old.Value); err != nil {
			s.logger.Warn("end replaced session", "err", err)
		}
	}
	s.cookie.set(w, token, s.accounts.SessionMaxAge())
}

func (s *Site) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.cookie.name()); err == nil {
		if err := s.accounts.SignOut(r.Context(), c.Value); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	s.cookie.clear(w)
	s.setFlash(w, "signed-out", "")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// formFailed shows the form again with its field errors, or an error page
// when the request as a whole was unreadable.
func (s *Site) formFailed(w http.ResponseWriter, r *http.Request, form string, fe *formError, email string) {
	if fe.Fields == nil {
		s.fail(w, r, fe.Status, fe.Title, fe.Message)
		return
	}
	s.render(w, r, fe.Status, form, page{Email: email, Errors: fe.Fields})
}
