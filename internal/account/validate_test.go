package account

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// addressOfLen returns a valid address of exactly n bytes with the given
// local part, padding the domain with labels of at most 63 bytes.
func addressOfLen(t *testing.T, local string, n int) string {
	t.Helper()
	rest := n - len(local) - len("@") - len(".com")
	var labels []string
	for rest > 0 {
		l := min(63, rest)
		if rest-l == 1 { // a lone dot can't be a label: leave two bytes
			l--
		}
		labels = append(labels, strings.Repeat("d", l))
		rest -= l + 1
	}
	addr := local + "@" + strings.Join(labels, ".") + ".com"
	if len(addr) != n {
		t.Fatalf("addressOfLen made %d bytes, want %d", len(addr), n)
	}
	return addr
}

func TestNormalizeEmail(t *testing.T) {
	local64 := strings.Repeat("l", 64)
	valid := []struct {
		name, in, want string
	}{
		{"plain", "alice@example.com", "alice@example.com"},
		{"plus tag", "alice+signup@example.com", "alice+signup@example.com"},
		{"dots and symbols in local part", "a.b_c-d%e!#$&'*/=?^`{|}~@example.com", "a.b_c-d%e!#$&'*/=?^`{|}~@example.com"},
		{"subdomains", "bob@mail.eu.example.co.uk", "bob@mail.eu.example.co.uk"},
		{"domain lowercased, local part kept", "Bob.Smith@Mail.EXAMPLE.Com", "Bob.Smith@mail.example.com"},
		{"surrounding spaces trimmed", "  carol@example.org \u00a0", "carol@example.org"},
		{"digits and hyphens in domain", "x@my-host1.example-2.io", "x@my-host1.example-2.io"},
		{"punycode domain", "user@xn--mnchen-3ya.de", "user@xn--mnchen-3ya.de"},
		{"localhost", "dev@localhost", "dev@localhost"},
		{"localhost uppercase", "dev@LocalHost", "dev@localhost"},
		{"64-byte local part", local64 + "@example.com", local64 + "@example.com"},
		{"254 bytes", addressOfLen(t, "a", 254), addressOfLen(t, "a", 254)},
	}
	for _, tt := range valid {
		t.Run("valid/"+tt.name, func(t *testing.T) {
			got, err := NormalizeEmail(tt.in)
			if err != nil {
				t.Fatalf("NormalizeEmail(%q) = %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("NormalizeEmail(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}

	invalid := []struct {
		name, in, wantMsg string // wantMsg empty: any message
	}{
		{"empty", "", "Enter your email address."},
		{"only spaces", "   ", "Enter your email address."},
		{"missing @", "alice.example.com", msgEmailFormat},
		{"two @", "alice@bob@example.com", msgEmailFormat},
		{"nothing before @", "@example.com", msgEmailFormat},
		{"nothing after @", "alice@", msgEmailFormat},
		{"display name", "Bob <b@x.com>", msgEmailFormat},
		{"angle brackets", "<b@x.com>", msgEmailFormat},
		{"comment", "b@x.com (Bob)", msgEmailFormat},
		{"group", "friends: b@x.com;", msgEmailFormat},
		{"two addresses", "a@x.com, b@x.com", msgEmailFormat},
		{"quoted local part", `"bob smith"@example.com`, msgEmailFormat},
		{"CRLF injection", "a@b.com\r\nBcc: x@y.com", ""},
		{"trailing newline", "a@b.com\n", ""},
		{"tab inside", "a\t@b.com", ""},
		{"NUL", "a\x00b@example.com", ""},
		{"DEL", "a\x7fb@example.com", ""},
		{"C1 control", "a\u0085b@example.com", ""},
		{"zero-width space", "a\u200bb@example.com", ""},
		{"bidi override", "a\u202eb@example.com", ""},
		{"line separator", "a@example.com\u2028", ""},
		{"invalid UTF-8", "a\xff@example.com", ""},
		{"255 bytes", addressOfLen(t, "a", 255), "That email address is too long (at most 254 characters)."},
		{"65-byte local part", strings.Repeat("l", 65) + "@example.com", "The part before @ is too long (at most 64 characters)."},
		{"trailing dot in local part", "alice.@example.com", msgEmailFormat},
		{"leading dot in local part", ".alice@example.com", msgEmailFormat},
		{"double dot in local part", "al..ice@example.com", msgEmailFormat},
		{"trailing dot in domain", "alice@example.com.", msgEmailFormat},
		{"double dot in domain", "alice@example..com", msgEmailFormat},
		{"space inside local part", "ali ce@example.com", msgEmailFormat},
		{"space before @", "alice @example.com", msgEmailFormat},
		{"space after @", "alice@ example.com", msgEmailFormat},
		{"space inside domain", "alice@exa mple.com", msgEmailFormat},
		{"domain without dot", "a@b", "Enter the full domain after @, like example.com."},
		{"domain label starts with hyphen", "a@-b.com", ""},
		{"domain label ends with hyphen", "a@b-.com", ""},
		{"underscore in domain", "a@my_host.com", ""},
		{"64-byte domain label", "a@" + strings.Repeat("d", 64) + ".com", ""},
		{"numeric top-level label", "a@192.168.0.1", ""},
		{"address literal", "a@[192.168.0.1]", ""},
		{"UTF-8 local part", "jürgen@example.com", "Use an email address without accented or non-Latin letters."},
		{"UTF-8 domain", "user@münchen.de", "Use an email address without accented or non-Latin letters."},
		{"Cyrillic look-alike", "p\u0430ypal@example.com", "Use an email address without accented or non-Latin letters."},
		{"huge", strings.Repeat("a", 1<<20) + "@example.com", "That email address is too long (at most 254 characters)."},
	}
	for _, tt := range invalid {
		t.Run("invalid/"+tt.name, func(t *testing.T) {
			got, err := NormalizeEmail(tt.in)
			if err == nil {
				t.Fatalf("NormalizeEmail(%.80q) = %q, want an error", tt.in, got)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "email" || fe.Message == "" {
				t.Fatalf("NormalizeEmail(%.80q) error = %#v, want *FieldError for email", tt.in, err)
			}
			if tt.wantMsg != "" && fe.Message != tt.wantMsg {
				t.Fatalf("NormalizeEmail(%.80q) message = %q, want %q", tt.in, fe.Message, tt.wantMsg)
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	const email = "Alice.Liddell@example.com"
	tests := []struct {
		name, password string
		valid          bool
		wantMsg        string
	}{
		{"7 characters", "k7#pQ2z", false, "Use at least 8 characters."},
		{"8 characters", "k7#pQ2zx", true, ""},
		{"256 characters", strings.Repeat("k7#pQ2zx", 32), true, ""},
		{"257 characters", strings.Repeat("k7#pQ2zx", 32) + "y", false, "Use at most 256 characters."},
		{"huge", strings.Repeat("x", 1<<20), false, "Use at most 256 characters."},
		{"spaces and no composition rules", "all lower case words", true, ""},
		{"7 multi-byte runes", "ñøßæ語日本", false, "Use at least 8 characters."},
		{"8 multi-byte runes", "ñøßæ語日本語", true, ""},
		{"8 emoji", "🔑🔑🔑🔑🔑🔑🔑🔑", true, ""},
		{"emoji ZWJ sequence", "👩\u200d👩\u200d👧 our family", true, ""},
		{"256 four-byte runes", strings.Repeat("🔑", 256), true, ""},
		{"257 four-byte runes", strings.Repeat("🔑", 257), false, "Use at most 256 characters."},
		{"common", "password", false, "That password is too common; choose another."},
		{"common, other case", "PassWord1", false, "That password is too common; choose another."},
		{"common digits", "12345678", false, "That password is too common; choose another."},
		{"same as email", "alice.liddell@EXAMPLE.com", false, "Don't use your email address as your password."},
		{"same as local part", "ALICE.LIDDELL", false, "Don't use your email address as your password."},
		{"contains local part", "alice.liddell!x", true, ""},
		{"NUL", "k7#pQ2zx\x00", false, msgPasswordChars},
		{"newline", "k7#pQ2zx\n", false, msgPasswordChars},
		{"DEL", "k7#p\x7fQ2zx", false, msgPasswordChars},
		{"invalid UTF-8", "k7#pQ2zx\xff", false, msgPasswordChars},
		{"lone surrogate bytes", "k7#pQ2zx\xed\xa0\x80", false, msgPasswordChars},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePassword(tt.password, email)
			if tt.valid {
				if err != nil {
					t.Fatalf("ValidatePassword(%.40q) = %v, want nil", tt.password, err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "password" || fe.Message == "" {
				t.Fatalf("ValidatePassword(%.40q) = %#v, want *FieldError for password", tt.password, err)
			}
			if fe.Message != tt.wantMsg {
				t.Fatalf("ValidatePassword(%.40q) message = %q, want %q", tt.password, fe.Message, tt.wantMsg)
			}
		})
	}
}

func TestValidatePasswordWithoutEmail(t *testing.T) {
	if err := ValidatePassword("alice.liddell", ""); err != nil {
		t.Fatalf("ValidatePassword with no email = %v", err)
	}
	if err := ValidatePassword("alice.liddell", "alice.liddell"); err == nil {
		t.Fatal("ValidatePassword accepted the email given without @")
	}
}

func TestFieldErrorError(t *testing.T) {
	err := error(&FieldError{Field: "email", Message: "Enter your email address."})
	if got, want := err.Error(), "email: Enter your email address."; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

// TestMessagesQuoteLimits keeps the numbers written in messages in step
// with the constants.
func TestMessagesQuoteLimits(t *testing.T) {
	msg := func(err error) string {
		t.Helper()
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v is not a *FieldError", err)
		}
		return fe.Message
	}
	checks := []struct {
		msg   string
		limit int
	}{
		{msg(ValidatePassword(strings.Repeat("x", MinPasswordLen-1), "")), MinPasswordLen},
		{msg(ValidatePassword(strings.Repeat("x", MaxPasswordLen+1), "")), MaxPasswordLen},
		{msg(func() error { _, err := NormalizeEmail(addressOfLen(t, "a", MaxEmailLen+1)); return err }()), MaxEmailLen},
		{msg(func() error {
			_, err := NormalizeEmail(strings.Repeat("l", maxLocalLen+1) + "@example.com")
			return err
		}()), maxLocalLen},
	}
	for _, c := range checks {
		if !strings.Contains(c.msg, " "+strconv.Itoa(c.limit)+" ") {
			t.Errorf("message %q does not quote the limit %d", c.msg, c.limit)
		}
	}
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "Bob.Smith+tag@Mail.Example.COM", " x@localhost ",
		"Bob <b@x.com>", "a@b.com\r\nBcc: x@y.com", "a\x00@b.com", "a\xff@b.com",
		`"quoted"@example.com`, "a@[1.2.3.4]", "a@b", "jürgen@example.com",
		"a@b.com (c)", "g: a@b.com;", "=?utf-8?q?x?= <a@b.com>", "a.@b.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeEmail(in)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "email" || fe.Message == "" {
				t.Fatalf("NormalizeEmail(%q) error = %#v, want *FieldError for email", in, err)
			}
			return
		}
		if !utf8.ValidString(out) || strings.IndexFunc(out, isInvisibleRune) >= 0 || strings.ContainsAny(out, " <>()\"") {
			t.Fatalf("NormalizeEmail(%q) = %q, with forbidden characters", in, out)
		}
		if len(out) > MaxEmailLen || strings.Count(out, "@") < 1 {
			t.Fatalf("NormalizeEmail(%q) = %q", in, out)
		}
		again, err := NormalizeEmail(out)
		if err != nil || again != out {
			t.Fatalf("NormalizeEmail(%q) = %q, which re-normalizes to %q, %v", in, out, again, err)
		}
	})
}

func FuzzValidatePassword(f *testing.F) {
	f.Add("correct horse", "alice@example.com")
	f.Add("password", "")
	f.Add("alice123", "alice123@example.com")
	f.Add("k7#pQ2zx\x00", "a@b.com")
	f.Add("ñøßæ語日本語", "x@y.z")
	f.Add("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "@")
	f.Fuzz(func(t *testing.T, password, email string) {
		err := ValidatePassword(password, email)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "password" || fe.Message == "" {
				t.Fatalf("ValidatePassword(%q, %q) error = %#v, want *FieldError for password", password, email, err)
			}
			return
		}
		n := utf8.RuneCountInString(password)
		if !utf8.ValidString(password) || n < MinPasswordLen || n > MaxPasswordLen || IsCommonPassword(password) {
			t.Fatalf("ValidatePassword(%q, %q) accepted it", password, email)
		}
	})
}
