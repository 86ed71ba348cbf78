package hosted

import (
	"encoding/json"
	"net/http"
	"strings"
)

// HealthHandler returns an HTTP handler for a health probe over the checks
// and services with any of tags (all of them when none is given), like
// ASP.NET Core's MapHealthChecks with a tag predicate: it answers 200 when
// the worst of them is Healthy or Degraded and 503 when it is Unhealthy.
// The body is the health in one word ("healthy"), or, when the request
// accepts application/json, the [HealthReport]:
//
//	{"status":"unhealthy","checks":[{"name":"lifecycle","status":"unhealthy","reason":"stopping","since":"…","tags":["ready"]}, …]}
//
// The usual probes are HealthHandler(TagReady) at /readyz and
// HealthHandler(TagLive) at /livez.
func (h *Host) HealthHandler(tags ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := h.CheckHealth(r.Context(), tags...)
		code := http.StatusOK
		if rep.Health == Unhealthy {
			code = http.StatusServiceUnavailable
		}
		hdr := w.Header()
		hdr.Set("Cache-Control", "no-store")
		if !strings.Contains(r.Header.Get("Accept"), "application/json") {
			hdr.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(code)
			w.Write([]byte(rep.Health.String() + "\n")) //nolint:errcheck // the client went away
			return
		}
		body, err := json.Marshal(rep)
		if err != nil { // cannot happen: every field marshals
			http.Error(w, "cannot encode the health report", http.StatusInternalServerError)
			return
		}
		hdr.Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write(append(body, '\n')) //nolint:errcheck // the client went away
	})
}
