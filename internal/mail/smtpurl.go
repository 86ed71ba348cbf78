package mail

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// TLSMode says how the connection to the SMTP server is protected.
type TLSMode int

const (
	// STARTTLSOpportunistic upgrades with STARTTLS when the server offers it.
	STARTTLSOpportunistic TLSMode = iota
	// STARTTLSRequired refuses to send unless STARTTLS succeeds.
	STARTTLSRequired
	// ImplicitTLS speaks TLS from the first byte (smtps).
	ImplicitTLS
)

// String names the mode as the status page shows it.
func (m TLSMode) String() string {
	switch m {
	case STARTTLSRequired:
		return "starttls-required"
	case ImplicitTLS:
		return "implicit-tls"
	default:
		return "starttls-opportunistic"
	}
}

// SMTPServer is where and how mail is sent, parsed from SMTP_URL.
type SMTPServer struct {
	Host     string
	Port     int
	Username string // empty: no authentication
	Password string
	TLS      TLSMode
}

// Addr is host:port.
func (s SMTPServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// String is the URL without its password, safe to log.
func (s SMTPServer) String() string {
	scheme := "smtp"
	if s.TLS == ImplicitTLS {
		scheme = "smtps"
	}
	u := url.URL{Scheme: scheme, Host: s.Addr()}
	if s.Username != "" {
		u.User = url.User(s.Username)
	}
	if s.TLS == STARTTLSRequired {
		u.RawQuery = "starttls=required"
	}
	return u.String()
}

// ParseSMTPURL reads smtp://[user:pass@]host[:port][?starttls=required] or
// smtps://[user:pass@]host[:port]. Ports default to 25 and 465. Errors never
// repeat the password.
func ParseSMTPURL(raw string) (SMTPServer, error) {
	var s SMTPServer
	if strings.TrimSpace(raw) == "" {
		return s, errors.New("is empty; want smtp://[user:pass@]host:port or smtps://…")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return s, errors.New("is not a URL; want smtp://[user:pass@]host:port or smtps://…")
	}
	switch u.Scheme {
	case "smtp":
		s.Port = 25
	case "smtps":
		s.Port = 465
		s.TLS = ImplicitTLS
	default:
		return s, fmt.Errorf("has scheme %q; want smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return s, errors.New("has no host; want smtp://host:port")
	}
	if u.Path != "" && u.Path != "/" || u.Fragment != "" {
		return s, errors.New("has a path or fragment; want smtp://host:port with nothing after the port (percent-encode / # ? @ in a password)")
	}
	s.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return s, fmt.Errorf("has port %q; want 1-65535", p)
		}
		s.Port = n
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	for key, vals := range u.Query() {
		switch {
		case key == "starttls" && len(vals) == 1 && vals[0] == "required":
			if s.TLS == ImplicitTLS {
				return s, errors.New("asks for starttls=required with smtps, which is TLS already")
			}
			s.TLS = STARTTLSRequired
		case key == "starttls" && len(vals) == 1 && vals[0] == "opportunistic":
		case key == "starttls":
			return s, errors.New("has starttls=" + strings.Join(vals, ",") + "; want required or opportunistic")
		default:
			return s, fmt.Errorf("has unknown parameter %q; only starttls is known", key)
		}
	}
	return s, nil
}
