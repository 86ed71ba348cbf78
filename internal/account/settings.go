package account

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// msgWrongCurrent is the answer to a wrong current password.
const msgWrongCurrent = "That is not your current password."

// checkCurrent verifies the current password of a signed-in account, as
// every setting change asks for it. A wrong one is an *InputError on the
// "current_password" field.
func (s *Service) checkCurrent(ctx context.Context, acct Account, current string) error {
	if current == "" {
		return &InputError{Fields: map[string]string{"current_password": "Enter your current password."}}
	}
	ok, _, err := s.cfg.Hasher.Verify(ctx, current, acct.PasswordHash)
	if err != nil {
		return fmt.Errorf("verify current password: %w", err)
	}
	if !ok {
		return &InputError{Fields: map[string]string{"current_password": msgWrongCurrent}}
	}
	return nil
}

// ChangePassword sets a new password for a signed-in account after checking
// the current one, ends every other session (sessionToken, the one asking,
// stays) and tells the owner by email.
func (s *Service) ChangePassword(ctx context.Context, acct Account, sessionToken, current, password string) error {
	if err := s.checkCurrent(ctx, acct, current); err != nil {
		return err
	}
	if password == current {
		return &InputError{Fields: map[string]string{"password": "Choose a password different from your current one."}}
	}
	pwHash, err := s.newPasswordHash(ctx, password, acct.Email)
	if err != nil {
		return err
	}
	keep, _ := HashToken(sessionToken)
	id, err := s.cfg.Repo.ChangePassword(ctx, acct.ID, pwHash, keep, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	s.queued(id)
	return nil
}

// ChangeEmail asks to move a signed-in account to a new address after
// checking the current password: a link goes to the new address and a
// notice to the current one, which stays in force until the link is
// followed. The answer does not say whether the new address has an
// account (no link is sent to one that has).
func (s *Service) ChangeEmail(ctx context.Context, acct Account, current, email string) (newAddr string, err error) {
	addr, emailErr := s.normalizeEmail(email)
	if err := inputError(emailErr); err != nil {
		return "", err
	}
	if strings.EqualFold(addr, acct.Email) {
		return "", &InputError{Fields: map[string]string{"email": "That is already your address."}}
	}
	if err := s.checkCurrent(ctx, acct, current); err != nil {
		return "", err
	}
	turn := s.cfg.MailLimits.turn(addr, string(MailEmailChange))
	ids, err := s.cfg.Repo.RequestEmailChange(ctx, acct.ID, addr, s.cfg.Now(), turn)
	if err != nil {
		return "", fmt.Errorf("change email: %w", err)
	}
	s.queued(ids...)
	return addr, nil
}

// ConfirmEmailChange spends an email-change token and moves its account to
// the new address; ErrEmailTaken when that address has an account by now.
func (s *Service) ConfirmEmailChange(ctx context.Context, token string) (Account, error) {
	hash, ok := HashToken(token)
	if !ok {
		return Account{}, ErrTokenInvalid
	}
	acct, err := s.cfg.Repo.ConfirmEmailChange(ctx, hash, s.cfg.Now())
	if err != nil {
		return Account{}, fmt.Errorf("confirm email change: %w", err)
	}
	return acct, nil
}

// Sessions lists the live sessions of a signed-in account, newest first,
// marking the one of sessionToken as current.
func (s *Service) Sessions(ctx context.Context, acct Account, sessionToken string) ([]SessionInfo, error) {
	stored, err := s.cfg.Repo.Sessions(ctx, acct.ID, s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	current, _ := HashToken(sessionToken)
	out := make([]SessionInfo, len(stored))
	for i, st := range stored {
		out[i] = SessionInfo{
			ID:         st.ID,
			CreatedAt:  st.CreatedAt,
			LastUsedAt: st.LastUsedAt,
			Browser:    BrowserSummary(st.UserAgent),
			Current:    current != nil && bytes.Equal(st.Hash, current),
		}
	}
	return out, nil
}

// RevokeSession ends one session of a signed-in account, by its id.
func (s *Service) RevokeSession(ctx context.Context, acct Account, id int64) error {
	if err := s.cfg.Repo.DeleteSessionByID(ctx, acct.ID, id); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeOtherSessions ends every session of a signed-in account but the
// one asking, and returns how many it ended.
func (s *Service) RevokeOtherSessions(ctx context.Context, acct Account, sessionToken string) (int64, error) {
	keep, _ := HashToken(sessionToken)
	n, err := s.cfg.Repo.DeleteOtherSessions(ctx, acct.ID, keep)
	if err != nil {
		return 0, fmt.Errorf("revoke other sessions: %w", err)
	}
	return n, nil
}

// DeleteAccount deletes a signed-in account after checking its password:
// the account, its sessions, tokens and unsent mail go at once, and a
// goodbye goes to its address.
func (s *Service) DeleteAccount(ctx context.Context, acct Account, current string) error {
	if err := s.checkCurrent(ctx, acct, current); err != nil {
		return err
	}
	id, err := s.cfg.Repo.DeleteAccount(ctx, acct.ID, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	s.queued(id)
	return nil
}
