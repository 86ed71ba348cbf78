package account

import (
	_ "embed"
	"strings"
	"sync"
)

// commonPasswordsText is the list of the most common passwords, one a line,
// lower-cased; lines that are blank or start with # are not passwords. Its
// source and licence are in common-passwords.LICENSE.
//
//go:embed common-passwords.txt
var commonPasswordsText string

// commonPasswords returns the set of common passwords, built on first use.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10_000)
	for line := range strings.Lines(commonPasswordsText) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[line] = struct{}{}
	}
	return set
})

// IsCommonPassword reports whether p, compared case-insensitively, is one of
// the 10,000 most common passwords.
func IsCommonPassword(p string) bool {
	_, ok := commonPasswords()[strings.ToLower(p)]
	return ok
}
