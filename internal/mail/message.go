package mail

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// errBadRecipient is returned for an address that cannot be put in a
// header as it is; sending to it will never work.
var errBadRecipient = errors.New("invalid recipient address")

// envelope is who a message is from and to, and when it is written.
type envelope struct {
	from      *mail.Address
	to        string
	date      time.Time
	messageID string // without angle brackets
}

// buildMessage assembles a multipart/alternative message (text, then HTML)
// through go-mail's header APIs only. A recipient with a line break, a
// display name or anything mail.ParseAddress does not return unchanged is
// refused: user input never shapes a header.
func buildMessage(env envelope, content rendered) (*gomail.Msg, error) {
	if strings.ContainsAny(env.to, "\r\n") {
		return nil, fmt.Errorf("%w: contains a line break", errBadRecipient)
	}
	to, err := mail.ParseAddress(env.to)
	if err != nil || to.Name != "" || to.Address != env.to {
		return nil, fmt.Errorf("%w: not a bare address", errBadRecipient)
	}
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(env.from)
	m.ToMailAddress(to)
	m.Subject(oneLine(content.Subject))
	m.SetDateWithValue(env.date)
	m.SetMessageIDWithValue(env.messageID)
	// RFC 3834: tells autoresponders not to answer.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, content.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, content.HTML)
	return m, nil
}

// messageIDEncoding is lower-case base32 without padding: dot-atom safe.
var messageIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newMessageID returns "<128 random bits>@host".
func newMessageID(host string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return messageIDEncoding.EncodeToString(b) + "@" + host
}

// messageIDHost is the right-hand side of Message-IDs: the site's host
// name, an IP address as a domain literal.
func messageIDHost(hostname string) string {
	if ip := net.ParseIP(hostname); ip != nil {
		return "[" + ip.String() + "]"
	}
	if hostname == "" {
		return "localhost"
	}
	return hostname
}
