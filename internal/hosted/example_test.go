package hosted_test

import (
	"context"
	"fmt"

	"signup/internal/hosted"
)

// A mailer drains a queue that an intake fills. The mailer is added first, so
// it starts first and stops last: when the intake stops it closes the queue,
// and the mailer sends what is left before it returns.
func Example() {
	jobs := hosted.NewQueue[string](16)
	h := hosted.New(hosted.Config{})

	h.Add("mailer", hosted.Background(func(ctx context.Context) error {
		// Ranging over C ends once the queue is closed and drained.
		for to := range jobs.C() {
			fmt.Println("sent confirmation to", to)
		}
		return nil
	}), hosted.Options{Policy: hosted.Restart})
	h.Add("intake", hosted.Funcs(nil, func(context.Context) error {
		jobs.Close()
		return nil
	}), hosted.Options{})

	go func() {
		<-h.Started()
		for _, to := range []string{"ann@example.com", "bob@example.com"} {
			if !jobs.TryEnqueue(to) {
				fmt.Println("queue full, the outbox sweep will send to", to)
			}
		}
		h.Stop() // as a SIGTERM would, through Run's context
	}()

	err := h.Run(context.Background())
	fmt.Println("run:", err)
	for _, s := range h.States() {
		fmt.Println(s.Name, s.Status)
	}
	// Output:
	// sent confirmation to ann@example.com
	// sent confirmation to bob@example.com
	// run: <nil>
	// mailer stopped
	// intake stopped
}
