package account

import (
	"strings"
	"testing"
)

func TestCommonPasswordsList(t *testing.T) {
	set := commonPasswords()
	if n := len(set); n < 9000 || n > 10_000 {
		t.Fatalf("the list has %d passwords, want 9,000 to 10,000", n)
	}
	for p := range set {
		if p == "" || p != strings.ToLower(p) || strings.TrimSpace(p) != p || strings.HasPrefix(p, "#") {
			t.Fatalf("list entry %q is not a trimmed, lower-case password", p)
		}
	}
}

func TestIsCommonPassword(t *testing.T) {
	tests := []struct {
		p    string
		want bool
	}{
		{"password", true},
		{"123456", true},
		{"qwerty", true},
		{"PASSWORD", true},
		{"QwErTy", true},
		{"iloveyou", true},
		{"", false},
		{"#", false},
		{"password ", false},
		{"correct horse battery staple", false},
		{"k7#pQ2zx", false},
	}
	for _, tt := range tests {
		if got := IsCommonPassword(tt.p); got != tt.want {
			t.Errorf("IsCommonPassword(%q) = %v, want %v", tt.p, got, tt.want)
		}
	}
}
