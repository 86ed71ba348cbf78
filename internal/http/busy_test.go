package http

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"signup/internal/account"
)

// A hash the queue refuses is answered at once with 503 and a Retry-After
// of the expected wait, rounded up to whole seconds.
func TestBusyHasherAnswers503WithRetryAfter(t *testing.T) {
	s, err := NewSite(SiteConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{
		{2500 * time.Millisecond, "3"},
		{40 * time.Second, "40"},
		{time.Millisecond, "1"},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/signup", nil)
		s.serverError(w, r, fmt.Errorf("signup: %w", &account.BusyError{RetryAfter: tc.wait}))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != tc.want {
			t.Errorf("wait %v: status %d, Retry-After %q; want 503 and %q", tc.wait, w.Code, w.Header().Get("Retry-After"), tc.want)
		}
	}
}
