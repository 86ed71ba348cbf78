package mail

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"signup/internal/account"
	"signup/internal/store"
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
func buildMessage(env envelope, content account.Email) (*gomail.Msg, error) {
	to, err := bareAddress(env.to)
	if err != nil {
		return nil, err
	}
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(env.from)
	m.ToMailAddress(to)
	m.Subject(strings.Join(strings.Fields(content.Subject), " "))
	m.SetDateWithValue(env.date)
	m.SetMessageIDWithValue(env.messageID)
	// RFC 3834: tells autoresponders not to answer.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, content.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, content.HTML)
	return m, nil
}

// bareAddress parses a recipient that may go in a header as it is: no
// line break, no display name, nothing mail.ParseAddress changes.
func bareAddress(addr string) (*mail.Address, error) {
	if strings.ContainsAny(addr, "\r\n") {
		return nil, fmt.Errorf("%w: contains a line break", errBadRecipient)
	}
	to, err := mail.ParseAddress(addr)
	if err != nil || to.Name != "" || to.Address != addr {
		return nil, fmt.Errorf("%w: not a bare address", errBadRecipient)
	}
	return to, nil
}

// messageID is the Message-ID of outbox row m, without angle brackets: the
// same for every attempt, so a mail client can tell a duplicate, and
// unique across databases by the row's creation time.
func messageID(m store.OutboxMail, host string) string {
	return "outbox-" + strconv.FormatInt(m.ID, 10) + "." + strconv.FormatInt(m.CreatedAt.UnixNano(), 36) + "@" + host
}

// messageIDHost is the right-hand side of Message-IDs: MAIL_FROM's domain,
// an IP address as a domain literal.
func messageIDHost(hostname string) string {
	hostname = strings.TrimSuffix(strings.TrimPrefix(hostname, "["), "]")
	if ip := net.ParseIP(hostname); ip != nil {
		return "[" + ip.String() + "]"
	}
	if hostname == "" {
		return "localhost"
	}
	return hostname
}
