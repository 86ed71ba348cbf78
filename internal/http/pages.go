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
	s.render(w, r, http.StatusOK, "home", page{})
}

func (s *Site) signupForm(w http.ResponseWriter, r *http.Request) {
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
		http.Redirect(w, r, "/signup/sent", http.StatusSeeOther)
	}
}

func (s *Site) signupSent(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "check-inbox", page{})
}

func (s *Site) confirm(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	_, err := s.accounts.Confirm(r.Context(), token)
	switch {
	case err == nil:
		s.render(w, r, http.StatusOK, "confirm", page{Outcome: "confirmed"})
	case errors.Is(err, account.ErrTokenUsed):
		s.render(w, r, http.StatusConflict, "confirm", page{Outcome: "used"})
	case errors.Is(err, account.ErrTokenExpired):
		s.render(w, r, http.StatusGone, "confirm", page{Outcome: "expired"})
	case errors.Is(err, account.ErrTokenInvalid):
		s.render(w, r, http.StatusBadRequest, "confirm", page{Outcome: "invalid"})
	default:
		s.serverError(w, r, err)
	}
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
		s.render(w, r, http.StatusOK, "resend", page{Sent: true})
	}
}

func (s *Site) loginForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", page{})
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
	token, _, err := s.accounts.SignIn(r.Context(), vals["email"], vals["password"])
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
		// A new session replaces any the browser had.
		if old, err := r.Cookie(s.cookie.name()); err == nil {
			if err := s.accounts.SignOut(r.Context(), old.Value); err != nil {
				s.logger.Warn("end replaced session", "err", err)
			}
		}
		s.cookie.set(w, token, s.accounts.SessionMaxAge())
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

func (s *Site) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.cookie.name()); err == nil {
		if err := s.accounts.SignOut(r.Context(), c.Value); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	s.cookie.clear(w)
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
