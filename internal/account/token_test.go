package account

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	plain, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 43 {
		t.Fatalf("token %q has %d characters, want 43", plain, len(plain))
	}
	raw, err := base64.RawURLEncoding.DecodeString(plain)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 bytes of unpadded base64url: %d bytes, %v", plain, len(raw), err)
	}
	if sum := sha256.Sum256([]byte(plain)); !bytes.Equal(hash, sum[:]) {
		t.Fatalf("hash = %x, want sha256(plain) = %x", hash, sum)
	}
	got, ok := HashToken(plain)
	if !ok || !bytes.Equal(got, hash) {
		t.Fatalf("HashToken(NewToken plain) = %x, %v; want %x, true", got, ok, hash)
	}
}

func TestNewTokenUnique(t *testing.T) {
	const n = 1000
	plains := make(map[string]bool, n)
	hashes := make(map[string]bool, n)
	for range n {
		plain, hash, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if plains[plain] || hashes[string(hash)] {
			t.Fatalf("token %q repeated within %d", plain, n)
		}
		plains[plain], hashes[string(hash)] = true, true
	}
}

func TestHashTokenRejectsGarbage(t *testing.T) {
	valid, _, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	a43 := strings.Repeat("A", 43)
	tests := map[string]string{
		"empty":               "",
		"42 characters":       valid[:42],
		"44 characters":       valid + "A",
		"plus":                "+" + a43[1:],
		"slash":               a43[:20] + "/" + a43[21:],
		"padding":             a43[:42] + "=",
		"padded to 44":        a43 + "=",
		"space":               a43[:10] + " " + a43[11:],
		"newline":             a43[:42] + "\n",
		"NUL":                 a43[:42] + "\x00",
		"non-ASCII, 43 bytes": a43[:41] + "é",
		"invalid UTF-8":       a43[:42] + "\xff",
		"stray low bits":      a43[:42] + "B", // the last character carries 2 bits; B sets a third
		"far too long":        strings.Repeat(valid, 1000),
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			if hash, ok := HashToken(s); ok || hash != nil {
				t.Fatalf("HashToken(%.60q) = %x, %v; want nil, false", s, hash, ok)
			}
		})
	}
	for _, s := range []string{a43, strings.Repeat("_", 42) + "w", strings.Repeat("-", 42) + "E"} {
		if _, ok := HashToken(s); !ok {
			t.Errorf("HashToken(%q) = false for a well-formed token", s)
		}
	}
}

func FuzzHashToken(f *testing.F) {
	valid, _, err := NewToken()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{valid, "", valid[:42], valid + "=", strings.Repeat("+", 43), strings.Repeat("A", 42) + "B", strings.Repeat("é", 21) + "A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hash, ok := HashToken(s)
		if !ok {
			if hash != nil {
				t.Fatalf("HashToken(%q) = %x, false; want nil hash", s, hash)
			}
			return
		}
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) != 32 || base64.RawURLEncoding.EncodeToString(raw) != s {
			t.Fatalf("HashToken accepted %q, which is not a canonical 32-byte token", s)
		}
		if sum := sha256.Sum256([]byte(s)); !bytes.Equal(hash, sum[:]) {
			t.Fatalf("HashToken(%q) = %x, want sha256 %x", s, hash, sum)
		}
	})
}
