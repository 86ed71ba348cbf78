package http

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"signup/internal/account"
)

// requireAccount sends a visitor who is not signed in to the sign-in page.
func (s *Site) requireAccount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if accountFrom(r.Context()) == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sessionToken is the signed-in browser's session token.
func (s *Site) sessionToken(r *http.Request) string {
	c, err := r.Cookie(s.cookie.name())
	if err != nil {
		return ""
	}
	return c.Value
}

// accountPage renders the account page (GET /, signed in): the address,
// the settings forms and the sessions. p carries a form's errors, if one
// came back.
func (s *Site) accountPage(w http.ResponseWriter, r *http.Request, status int, p page) {
	acct := accountFrom(r.Context())
	sessions, err := s.accounts.Sessions(r.Context(), *acct, s.sessionToken(r))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	p.Sessions = sessions
	s.render(w, r, status, "home", p)
}

// settingFailed shows the account page again with form's errors, or a
// server error.
func (s *Site) settingFailed(w http.ResponseWriter, r *http.Request, form string, err error, email string) {
	var in *account.InputError
	if errors.As(err, &in) {
		s.accountPage(w, r, http.StatusBadRequest, page{Form: form, Errors: in.Fields, Email: email})
		return
	}
	s.serverError(w, r, err)
}

// settingForm decodes a settings form; on failure it has answered.
func (s *Site) settingForm(w http.ResponseWriter, r *http.Request, form string, fields ...string) (map[string]string, bool) {
	vals, fe := decodeForm(r, fields...)
	if fe == nil {
		return vals, true
	}
	if fe.Fields == nil {
		s.fail(w, r, fe.Status, fe.Title, fe.Message)
		return nil, false
	}
	s.accountPage(w, r, fe.Status, page{Form: form, Errors: fe.Fields, Email: vals["email"]})
	return nil, false
}

func (s *Site) changePassword(w http.ResponseWriter, r *http.Request) {
	vals, ok := s.settingForm(w, r, "password", "current_password", "password")
	if !ok {
		return
	}
	err := s.accounts.ChangePassword(r.Context(), *accountFrom(r.Context()), s.sessionToken(r), vals["current_password"], vals["password"])
	if err != nil {
		s.settingFailed(w, r, "password", err, "")
		return
	}
	s.setFlash(w, "password-changed", "")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Site) changeEmail(w http.ResponseWriter, r *http.Request) {
	vals, ok := s.settingForm(w, r, "email", "current_password", "email")
	if !ok {
		return
	}
	addr, err := s.accounts.ChangeEmail(r.Context(), *accountFrom(r.Context()), vals["current_password"], vals["email"])
	if err != nil {
		s.settingFailed(w, r, "email", err, vals["email"])
		return
	}
	s.setFlash(w, "email-requested", addr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// emailConfirmPage checks an email-change link and shows one button that
// moves the account; opening the link changes nothing.
func (s *Site) emailConfirmPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	st, err := s.accounts.CheckToken(r.Context(), account.PurposeEmailChange, token)
	if err != nil {
		s.tokenProblem(w, r, "email-confirm", err, "")
		return
	}
	s.render(w, r, http.StatusOK, "email-confirm", page{Outcome: "ready", Token: token, Email: st.NewEmail})
}

func (s *Site) emailConfirm(w http.ResponseWriter, r *http.Request) {
	vals, fe := decodeForm(r, "token")
	if fe != nil {
		s.fail(w, r, fe.Status, "This link is not valid", "The link may have been cut short or mistyped. Copy the whole link from the email.")
		return
	}
	acct, err := s.accounts.ConfirmEmailChange(r.Context(), vals["token"])
	if err != nil {
		s.tokenProblem(w, r, "email-confirm", err, "")
		return
	}
	s.setFlash(w, "email-changed", acct.Email)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Site) revokeOthers(w http.ResponseWriter, r *http.Request) {
	if _, err := s.accounts.RevokeOtherSessions(r.Context(), *accountFrom(r.Context()), s.sessionToken(r)); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.setFlash(w, "others-revoked", "")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Site) revokeSession(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
		return
	}
	if err := s.accounts.RevokeSession(r.Context(), *accountFrom(r.Context()), id); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.setFlash(w, "session-revoked", "")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Site) deleteAccount(w http.ResponseWriter, r *http.Request) {
	vals, ok := s.settingForm(w, r, "delete", "current_password")
	if !ok {
		return
	}
	if err := s.accounts.DeleteAccount(r.Context(), *accountFrom(r.Context()), vals["current_password"]); err != nil {
		s.settingFailed(w, r, "delete", err, "")
		return
	}
	s.cookie.clear(w)
	s.setFlash(w, "account-deleted", "")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
