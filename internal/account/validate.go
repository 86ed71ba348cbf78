package account

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what a person may enter in the signup and sign-in forms.
const (
	// MaxEmailLen is the longest email address accepted, in bytes
	// (RFC 5321's 256-octet path limit less the angle brackets).
	MaxEmailLen = 254
	// MinPasswordLen is the fewest characters (code points) a password may
	// have (NIST SP 800-63B).
	MinPasswordLen = 8
	// MaxPasswordLen is the most characters (code points) a password may
	// have; it bounds the work of hashing.
	MaxPasswordLen = 256
)

// maxLocalLen is RFC 5321's limit on the part of an address before the @.
const maxLocalLen = 64

// FieldError is a validation failure of one form field, with a message fit
// to show the user beside the field.
type FieldError struct {
	// Field is the form field at fault: "email" or "password".
	Field string
	// Message is a complete sentence for the user, saying what to change.
	Message string
}

// Error returns the field name and the message.
func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func emailError(msg string) error    { return &FieldError{Field: "email", Message: msg} }
func passwordError(msg string) error { return &FieldError{Field: "password", Message: msg} }

// Messages that are returned from more than one place or checked by tests.
// Messages quote the limits above as literals; TestMessagesQuoteLimits keeps
// them in step.
const (
	msgEmailFormat     = "Enter an email address like name@example.com."
	msgPasswordTooLong = "Use at most 256 characters."
	msgPasswordChars   = "Your password contains characters that can't be used, such as control characters."
)

// NormalizeEmail checks that s, less surrounding white space, is a bare
// email address and returns it with the domain in lower case. The local part
// is kept as typed: mail servers may treat it case-sensitively, while
// uniqueness of accounts is decided case-insensitively by the store.
//
// The address must be an RFC 5322 addr-spec as net/mail parses it, written
// exactly so: no display name, angle brackets, comments, groups or quoted
// local part. On top of that:
//   - at most 254 bytes in all and 64 before the @;
//   - no control or invisible formatting characters anywhere, and valid UTF-8;
//   - ASCII only. Addresses with a UTF-8 local part or an internationalized
//     domain are refused: delivering to them needs SMTPUTF8 on every hop,
//     and non-Latin look-alike letters make impostor accounts easy. Such
//     domains can still be entered in their xn-- (punycode) form;
//   - the domain is a host name of at least two dot-separated labels (letters,
//     digits and inner hyphens, at most 63 bytes each, the last not all
//     digits), or exactly "localhost", which local development and tests
//     deliver to. Address literals such as [192.0.2.1] are refused.
//
// Errors are *FieldError for the "email" field.
func NormalizeEmail(s string) (string, error) {
	if !utf8.ValidString(s) || strings.IndexFunc(s, isInvisibleRune) >= 0 {
		return "", emailError("That email address contains characters that are not allowed.")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", emailError("Enter your email address.")
	}
	if len(s) > MaxEmailLen {
		return "", emailError("That email address is too long (at most 254 characters).")
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return "", emailError("Use an email address without accented or non-Latin letters.")
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", emailError(msgEmailFormat)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", emailError(msgEmailFormat)
	}
	local, domain := s[:at], strings.ToLower(s[at+1:])
	if len(local) > maxLocalLen {
		return "", emailError("The part before @ is too long (at most 64 characters).")
	}
	if !isMailDomain(domain) {
		return "", emailError("Enter the full domain after @, like example.com.")
	}
	return local + "@" + domain, nil
}

// isInvisibleRune reports control characters (CR, LF, NUL, DEL, C1…),
// formatting characters (zero-width, bidirectional overrides) and the
// Unicode line and paragraph separators.
func isInvisibleRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r)
}

// isMailDomain reports whether d, already lower-case ASCII, is "localhost"
// or a host name of two or more labels whose top-level label is not numeric
// (so "1.2.3.4" is refused).
func isMailDomain(d string) bool {
	if d == "localhost" {
		return true
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !isHostLabel(l) {
			return false
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// isHostLabel reports whether l is an RFC 1123 label: 1 to 63 letters,
// digits and hyphens, not starting or ending with a hyphen.
func isHostLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidatePassword checks a new password against the NIST SP 800-63B rules:
// 8 to 256 characters counted as Unicode code points, valid UTF-8 without
// control characters, not one of the most common passwords, and not the
// account's email address or the part of it before the @ (compared
// case-insensitively; email may be empty to skip that check). It imposes no
// composition rules. Spaces, symbols and any printable Unicode, emoji
// included, are allowed. The password is hashed as given, without Unicode
// normalization, so it must be typed the same way to sign in.
//
// Errors are *FieldError for the "password" field.
func ValidatePassword(password, email string) error {
	// Checked in bytes first so a huge input is refused before it is scanned.
	if len(password) > MaxPasswordLen*utf8.UTFMax {
		return passwordError(msgPasswordTooLong)
	}
	if !utf8.ValidString(password) || strings.IndexFunc(password, unicode.IsControl) >= 0 {
		return passwordError(msgPasswordChars)
	}
	switch n := utf8.RuneCountInString(password); {
	case n < MinPasswordLen:
		return passwordError("Use at least 8 characters.")
	case n > MaxPasswordLen:
		return passwordError(msgPasswordTooLong)
	}
	if IsCommonPassword(password) {
		return passwordError("That password is too common; choose another.")
	}
	if email = strings.TrimSpace(email); email != "" {
		local := email
		if at := strings.LastIndexByte(email, '@'); at >= 0 {
			local = email[:at]
		}
		if strings.EqualFold(password, email) || strings.EqualFold(password, local) {
			return passwordError("Don't use your email address as your password.")
		}
	}
	return nil
}
