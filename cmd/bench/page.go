package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/go-chi/chi/v5"

	"signup/internal/devmail"
)

func signupPage(sz sizes) *scenario {
	return &scenario{
		name:     "GET /signup req/s",
		unit:     "req/s",
		baseUnit: "req/s",
		goal:     &goal{text: "ratio ≥ 0.9", atLeast: true, limit: 0.9},
		note: fmt.Sprintf("Both at saturation: %d×NumCPU closed-loop vegeta workers with keep-alive for %v each, 200 answers per second; "+
			"the web is measured half before and half after the baseline, and its two halves averaged (both are in the per-run figures). "+
			"Baseline: a separate process (this binary re-run as a child) serving a chi router whose handler writes the web's "+
			"GET /signup answer, captured at the start of the run (same headers, same bytes), from memory; "+
			"both are separate processes reached over loopback by the same client.", pageWorkersPerCPU, sz.pageFor),
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			s, err := h.startSite(ctx, devmail.Faults{})
			if err != nil {
				return measurement{}, err
			}
			defer s.close()
			page, err := capturePage(ctx, s.url+"/signup")
			if err != nil {
				return measurement{}, err
			}
			child, childURL, err := h.startPageServer(ctx, page)
			if err != nil {
				return measurement{}, err
			}
			defer child.kill()

			workers := pageWorkersPerCPU * runtime.NumCPU()
			// measure loads the server at base and returns its answers a
			// second, and adds to cpu and answers the server's CPU time
			// and its answers: CPU per answer is the figure the machine's
			// noise moves least.
			var webCPU, baseCPU time.Duration
			var webAnswers, baseAnswers int
			measure := func(base string, p *process, d time.Duration, cpu *time.Duration, answers *int) (float64, error) {
				tr := getTargeter(base + "/signup")
				atSaturation(ctx, tr, workers, sz.pageFor/5) // warm up
				before, err := processCPU(p.cmd.Process.Pid)
				if err != nil {
					return 0, err
				}
				m := atSaturation(ctx, tr, workers, d)
				after, err := processCPU(p.cmd.Process.Pid)
				if err != nil {
					return 0, err
				}
				if err := expect(m, http.StatusOK, h.progress); err != nil {
					return 0, fmt.Errorf("%s: %w", base, err)
				}
				*cpu += after - before
				*answers += m.StatusCodes[fmt.Sprint(http.StatusOK)]
				return perSecond(m, http.StatusOK), nil
			}
			web1, err := measure(s.url, s.web, sz.pageFor/2, &webCPU, &webAnswers)
			if err != nil {
				return measurement{}, err
			}
			base, err := measure(childURL, child, sz.pageFor, &baseCPU, &baseAnswers)
			if err != nil {
				return measurement{}, err
			}
			web2, err := measure(s.url, s.web, sz.pageFor/2, &webCPU, &webAnswers)
			if err != nil {
				return measurement{}, err
			}
			perAnswer := func(cpu time.Duration, n int) string {
				return fmtNum(float64(cpu.Microseconds()) / float64(max(n, 1)))
			}
			return measurement{value: (web1 + web2) / 2, baseline: base,
				detail: fmt.Sprintf("page %d bytes; web %s before, %s after; CPU per answer %s µs web, %s µs baseline",
					len(page.Body), fmtNum(web1), fmtNum(web2), perAnswer(webCPU, webAnswers), perAnswer(baseCPU, baseAnswers))}, nil
		},
	}
}

// pageWorkersPerCPU keeps enough requests in flight that neither server
// waits for the client.
const pageWorkersPerCPU = 8

// cannedPage is an HTTP answer to replay: what the baseline serves.
type cannedPage struct {
	Header http.Header
	Body   []byte
}

// capturePage gets u once and keeps its headers (but those net/http sets
// per answer) and body.
func capturePage(ctx context.Context, u string) (cannedPage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return cannedPage{}, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return cannedPage{}, fmt.Errorf("get %s: %w", u, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return cannedPage{}, err
	}
	if res.StatusCode != http.StatusOK {
		return cannedPage{}, fmt.Errorf("get %s: status %d", u, res.StatusCode)
	}
	header := res.Header.Clone()
	for _, k := range []string{"Date", "Content-Length", "Connection"} {
		header.Del(k)
	}
	return cannedPage{Header: header, Body: body}, nil
}

// Child processes: this binary, started again with childRoleEnv set.
const (
	childRoleEnv = "SIGNUP_BENCH_CHILD"
	// childPageEnv names the JSON file holding the cannedPage to serve.
	childPageEnv = "SIGNUP_BENCH_PAGE"
	rolePage     = "page"
)

// startPageServer starts the constant-page baseline as a child process
// and returns it with its base URL.
func (h *harness) startPageServer(ctx context.Context, page cannedPage) (*process, string, error) {
	b, err := json.Marshal(page)
	if err != nil {
		return nil, "", err
	}
	file := filepath.Join(h.dir, "page.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return nil, "", err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	p, err := launch(self, []string{
		"PATH=" + os.Getenv("PATH"),
		childRoleEnv + "=" + rolePage,
		childPageEnv + "=" + file,
		"HTTP_ADDR=127.0.0.1:0",
	})
	if err != nil {
		return nil, "", err
	}
	addr, err := p.waitListening(ctx, 30*time.Second)
	if err != nil {
		p.kill()
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

// runChild runs this binary as one of the bench's helper processes and
// returns its exit status.
func runChild(role string, getenv func(string) string, stderr io.Writer) int {
	var err error
	switch role {
	case rolePage:
		err = servePage(getenv, stderr)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	fmt.Fprintf(stderr, "bench child: %v\n", err)
	return 1
}

// servePage serves the canned page at GET /signup through chi, with the
// web's server timeouts, until it is killed. It logs its address the way
// the web does.
func servePage(getenv func(string) string, stderr io.Writer) error {
	b, err := os.ReadFile(getenv(childPageEnv))
	if err != nil {
		return err
	}
	var page cannedPage
	if err := json.Unmarshal(b, &page); err != nil {
		return err
	}
	r := chi.NewRouter()
	r.Get("/signup", func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range page.Header {
			w.Header()[k] = v
		}
		w.Write(page.Body)
	})
	ln, err := net.Listen("tcp", getenv("HTTP_ADDR"))
	if err != nil {
		return err
	}
	slog.New(slog.NewJSONHandler(stderr, nil)).Info("listening", "server", "http", "addr", ln.Addr().String())
	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return srv.Serve(ln)
}
