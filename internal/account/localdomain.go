package account

import "strings"

// normalizeEmail is NormalizeEmail under the deployment's rule on local
// addresses: user@localhost, the one single-label domain NormalizeEmail
// knows, is accepted only where Config.LocalhostEmail says the site itself
// runs on localhost. Elsewhere no mail to it can reach a person, and an
// account for it would only be a way to make the server mail itself.
func (s *Service) normalizeEmail(email string) (string, error) {
	addr, err := NormalizeEmail(email)
	if err == nil && !s.cfg.LocalhostEmail && strings.HasSuffix(addr, "@localhost") {
		return "", emailError("Enter the full domain after @, like example.com.")
	}
	return addr, err
}
