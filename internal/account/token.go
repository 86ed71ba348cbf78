package account

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// tokenBytes is the entropy of a token: 256 bits.
const tokenBytes = 32

// tokenEncoding is unpadded base64url that refuses non-canonical input.
var tokenEncoding = base64.RawURLEncoding.Strict()

// tokenLen is the length of a token as the user sees it: 43 characters.
const tokenLen = (tokenBytes*8 + 5) / 6

// NewToken returns a random 256-bit token, encoded as 43 characters of
// unpadded base64url, to give to the user (in a link or a cookie), and its
// SHA-256 hash, the only form to store. The error is always nil in practice
// (crypto/rand does not fail) and is kept for callers' symmetry.
func NewToken() (plain string, hash []byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	plain = tokenEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(plain))
	return plain, sum[:], nil
}

// HashToken returns the SHA-256 hash of a token made by NewToken, to look it
// up in storage. ok is false, and hash nil, when plain cannot be such a token
// (not exactly 43 characters of the base64url alphabet in canonical form), so
// the caller can answer "invalid link" without asking the database.
func HashToken(plain string) (hash []byte, ok bool) {
	if len(plain) != tokenLen {
		return nil, false
	}
	for i := 0; i < len(plain); i++ {
		c := plain[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, false
		}
	}
	// Rejects a last character with stray low bits, which NewToken never makes.
	if _, err := tokenEncoding.DecodeString(plain); err != nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(plain))
	return sum[:], true
}
