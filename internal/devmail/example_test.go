package devmail_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	"signup/internal/devmail"
)

// A test starts the sink on a random port, points the code under test at
// SMTPURL, and waits for the mail instead of sleeping.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	sink := devmail.New(devmail.Config{})
	if err := sink.Start(ctx); err != nil {
		panic(err)
	}
	defer sink.Stop(context.Background())

	// Deterministic faults: the first attempt fails with 451, the retry
	// succeeds.
	sink.FailNext(1, 451)

	// … configure the sender with sink.SMTPURL() and sign up alice …

	_, err := sink.Wait(ctx, func(ms []devmail.Message) bool {
		return slices.ContainsFunc(ms, func(m devmail.Message) bool {
			return slices.Contains(m.To, "alice@example.test")
		})
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(sink.MessagesTo("alice@example.test")[0].Links)
}
