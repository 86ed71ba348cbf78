package ops_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"signup/internal/hosted"
	"signup/internal/mail"
	"signup/internal/ops"
	"signup/internal/purge"
	"signup/internal/store/storetest"
)

// The dashboard and the ops routes over the running application are
// tested in cmd/web (dashboard_test.go), through the wiring web serve
// uses; here, what only a hand-made dashboard can show.

// section returns the HTML of the page's section with this id.
func section(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<section id="` + id + `".*?</section>`).FindString(page)
	if m == "" {
		t.Fatalf("page has no section %q:\n%s", id, page)
	}
	return m
}

func mustContain(t *testing.T, what, html string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(html, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, html)
		}
	}
}

// TestDashboardWithoutDatabase: with the database gone, the page still
// renders what it knows (services, queue), marks the rest unavailable, and
// never shows the error itself; the log has it.
func TestDashboardWithoutDatabase(t *testing.T) {
	db := storetest.New(t)
	purger, err := purge.New(purge.Config{Store: db.Purges()})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	dash, err := ops.NewDashboard(ops.DashboardConfig{
		Services: func() []hosted.State {
			return []hosted.State{{Name: "mail", Status: hosted.StatusRunning, StartedAt: time.Now().Add(-90 * time.Second)}}
		},
		Queue: hosted.NewQueue[mail.Job](8), Outbox: db.Outbox(), Purges: purger,
		Enqueue: func(int64) bool { return false }, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	dash.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	page := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d", rec.Code)
	}
	mustContain(t, "page", page, `<th scope="row">mail</th>`, "1m 30s", `<dd id="queue-depth">0 / 8</dd>`,
		"The chart is unavailable", "The failures are unavailable", "The runs are unavailable")
	mustContain(t, "mail section", section(t, page, "queue"), "unavailable")
	if strings.Contains(page, "closed") || strings.Contains(page, "pool") {
		t.Errorf("the page shows an internal error:\n%s", page)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "dashboard: count outbox rows") {
		t.Errorf("the error was not logged:\n%s", logs.String())
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
