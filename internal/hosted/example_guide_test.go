package hosted_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"signup/internal/hosted"
)

// A queued background worker, the Go form of ASP.NET Core's
// QueuedHostedService over a bounded Channel<T>: producers add work items to
// a Queue, waiting for room when it is full (BoundedChannelFullMode.Wait),
// and a background worker takes them one at a time. On stop the worker
// takes nothing new and finishes the item in hand under InFlight's context,
// which lasts until the host's soft deadline.
func ExampleBackground_queued() {
	type workItem func(ctx context.Context) error
	queue := hosted.NewQueue[workItem](100)

	h := hosted.New(hosted.Config{})
	h.Add("queued-worker", hosted.Background(func(ctx context.Context) error {
		for {
			item, err := queue.Dequeue(ctx)
			if err != nil {
				return nil // stopping, or the queue is closed and empty
			}
			if err := item(hosted.InFlight(ctx)); err != nil {
				fmt.Println("work item failed:", err)
			}
		}
	}), hosted.Options{})

	go func() {
		<-h.Started()
		done := make(chan struct{})
		for i := 1; i <= 3; i++ {
			// Enqueue waits while the queue is full, like WriteAsync.
			err := queue.Enqueue(context.Background(), func(ctx context.Context) error {
				fmt.Println("work item", i, "done")
				if i == 3 {
					close(done)
				}
				return nil
			})
			if err != nil {
				fmt.Println("enqueue:", err)
			}
		}
		<-done
		h.Stop()
	}()
	fmt.Println("run:", h.Run(context.Background()))
	// Output:
	// work item 1 done
	// work item 2 done
	// work item 3 done
	// run: <nil>
}

// A timed background worker, the Go form of ASP.NET Core's
// TimedHostedService, that never overlaps itself: the work runs in the
// worker's own loop, so a run that outlasts the period delays the next
// tick instead of running beside it (a time.Ticker drops the ticks it could
// not deliver), like PeriodicTimer rather than System.Threading.Timer.
func ExampleBackground_timed() {
	var running, overlaps, runs atomic.Int32
	h := hosted.New(hosted.Config{})
	h.Add("timed-worker", hosted.Background(func(ctx context.Context) error {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			if running.Add(1) > 1 {
				overlaps.Add(1)
			}
			n := runs.Add(1)
			time.Sleep(12 * time.Millisecond) // the work: longer than the period
			fmt.Println("run", n)
			running.Add(-1)
			if n == 3 {
				go h.Stop()
				return nil // done: the service finishes, and is not restarted
			}
		}
	}), hosted.Options{Heartbeat: time.Minute})

	fmt.Println("run:", h.Run(context.Background()))
	fmt.Println("overlapping runs:", overlaps.Load())
	// Output:
	// run 1
	// run 2
	// run 3
	// run: <nil>
	// overlapping runs: 0
}

// A service with health, probed like ASP.NET Core's MapHealthChecks with a
// "ready" tag: the background service reports Degraded while its peer
// refuses it and Unhealthy once it gives up, through the Reporter its
// context carries; /readyz answers 503 only for Unhealthy, and lists each
// check as JSON when asked.
func ExampleReporter() {
	report := make(chan hosted.Health)
	h := hosted.New(hosted.Config{})
	h.Add("sender", hosted.Background(func(ctx context.Context) error {
		health := hosted.ReporterFrom(ctx)
		for {
			select {
			case <-ctx.Done():
				return nil
			case level := <-report:
				health.Report(level, "SMTP server refuses connections")
				report <- level // reported
			}
		}
	}), hosted.Options{Tags: []string{hosted.TagReady}})
	readyz := h.HealthHandler(hosted.TagReady)

	probe := func() {
		req := httptest.NewRequest("GET", "/readyz", nil)
		req.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		readyz.ServeHTTP(rec, req)
		var rep hosted.HealthReport
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(rec.Code, http.StatusText(rec.Code), rep.Health)
		for _, c := range rep.Checks {
			fmt.Printf("  %s: %s (%s)\n", c.Name, c.Health, c.Reason)
		}
	}

	go func() {
		<-h.Started()
		probe()
		for _, level := range []hosted.Health{hosted.Degraded, hosted.Unhealthy} {
			report <- level
			<-report
			probe()
		}
		h.Stop()
	}()
	if err := h.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 200 OK healthy
	//   lifecycle: healthy (running)
	//   sender: healthy ()
	// 200 OK degraded
	//   lifecycle: healthy (running)
	//   sender: degraded (SMTP server refuses connections)
	// 503 Service Unavailable unhealthy
	//   lifecycle: healthy (running)
	//   sender: unhealthy (SMTP server refuses connections)
}
