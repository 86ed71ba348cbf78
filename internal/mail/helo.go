package mail

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// HELOName is the default EHLO name (SMTP_HELO): the host of base (BASE_URL)
// when it is a domain name with a dot, else the machine's fully qualified
// name, else "localhost". Mail servers that check the name want a fully
// qualified one; a short host name or a pod name is refused.
func HELOName(base *url.URL) string {
	if base != nil {
		if h := base.Hostname(); qualified(h) {
			return h
		}
	}
	if h := fqdn(); qualified(h) {
		return h
	}
	return "localhost"
}

// qualified reports whether h is a domain name with at least two labels,
// not an IP address.
func qualified(h string) bool {
	h = strings.TrimSuffix(h, ".")
	return h != "" && net.ParseIP(h) == nil && strings.Contains(h, ".") && validHELO(h) == nil
}

// fqdn is the machine's fully qualified name, as the resolver sees it;
// empty when unknown.
func fqdn() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return ""
	}
	if strings.Contains(host, ".") {
		return host
	}
	// The resolver (/etc/hosts first) knows the qualified name; it gets a
	// moment only, so a machine without DNS does not wait at start.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if cname, err := net.DefaultResolver.LookupCNAME(ctx, host); err == nil {
		return strings.TrimSuffix(cname, ".")
	}
	return ""
}

// CheckHELO checks SMTP_HELO: a host name or an address literal.
func CheckHELO(h string) error { return validHELO(h) }

// validHELO checks an EHLO name: letters, digits, hyphens and dots, or an
// address literal in brackets.
func validHELO(h string) error {
	if h == "" || len(h) > 255 {
		return errors.New("must be a host name of 1 to 255 characters")
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if net.ParseIP(strings.TrimPrefix(h[1:len(h)-1], "IPv6:")) == nil {
			return errors.New("has an invalid address literal")
		}
		return nil
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return errors.New("may hold only letters, digits, hyphens and dots")
		}
	}
	return nil
}
