package http

import (
	"errors"
	"net/http"

	"signup/internal/account"
)

func (s *Site) forgotForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "forgot", page{Email: r.URL.Query().Get("email")})
}

// forgot answers with the same page, status and timing for every address:
// the request path does the same work whether or not it has an account,
// and the email is queued, never sent from here.
func (s *Site) forgot(w http.ResponseWriter, r *http.Request) {
	vals, fe := decodeForm(r, "email")
	if fe != nil {
		s.formFailed(w, r, "forgot", fe, vals["email"])
		return
	}
	if s.limits.email(w, r, "forgot", vals["email"]) {
		return
	}
	err := s.accounts.Forgot(r.Context(), vals["email"])
	var in *account.InputError
	switch {
	case errors.As(err, &in):
		s.render(w, r, http.StatusBadRequest, "forgot", page{Email: vals["email"], Errors: in.Fields})
	case err != nil:
		s.serverError(w, r, err)
	default:
		addr, _ := account.NormalizeEmail(vals["email"])
		s.render(w, r, http.StatusOK, "forgot", page{Sent: true, Email: addr})
	}
}

// resetForm checks a reset link's token and asks for the new password.
func (s *Site) resetForm(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	st, err := s.accounts.CheckToken(r.Context(), account.PurposeReset, token)
	if err != nil {
		s.tokenProblem(w, r, "reset", err, st.Email)
		return
	}
	s.render(w, r, http.StatusOK, "reset", page{Outcome: "ready", Token: token, Email: st.Email})
}

// reset sets the new password, ends every session and signs this browser
// in.
func (s *Site) reset(w http.ResponseWriter, r *http.Request) {
	vals, fe := decodeForm(r, "token", "password")
	if fe != nil {
		if fe.Fields == nil || fe.Fields["token"] != "" {
			s.fail(w, r, http.StatusBadRequest, "This link is not valid", "The link may have been cut short or mistyped. Copy the whole link from the email.")
			return
		}
		s.render(w, r, fe.Status, "reset", page{Outcome: "ready", Token: vals["token"], Errors: fe.Fields})
		return
	}
	session, _, err := s.accounts.Reset(r.Context(), vals["token"], vals["password"], r.UserAgent())
	var in *account.InputError
	switch {
	case errors.As(err, &in):
		s.render(w, r, http.StatusBadRequest, "reset", page{Outcome: "ready", Token: vals["token"], Errors: in.Fields})
	case err != nil:
		s.tokenProblem(w, r, "reset", err, "")
	default:
		s.startSession(w, r, session)
		s.setFlash(w, "password-reset", "")
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}
