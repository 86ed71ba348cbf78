package devmail

import (
	"context"
	"errors"
	"net/smtp"
	"reflect"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// sendErr sends one message and returns go-mail's SendError, failing the
// test if the send did not fail that way.
func sendErr(t *testing.T, srv *Server) *gomail.SendError {
	t.Helper()
	err := send(t, srv, newMsg(t, "a@example.test", "fault", "x", ""))
	var se *gomail.SendError
	if !errors.As(err, &se) {
		t.Fatalf("send: got %v, want a *mail.SendError", err)
	}
	return se
}

func TestFailureRates(t *testing.T) {
	tests := []struct {
		name     string
		faults   Faults
		code     int
		enhanced string
		temp     bool
	}{
		{"temporary", Faults{TempFailRate: 1}, 451, "4.3.0", true},
		{"permanent", Faults{PermFailRate: 1}, 554, "5.0.0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := setup(t, Config{})
			srv.SetFaults(tt.faults)
			se := sendErr(t, srv)
			if se.ErrorCode() != tt.code || se.EnhancedStatusCode() != tt.enhanced || se.IsTemp() != tt.temp {
				t.Errorf("got code %d (%s), temporary %v; want %d (%s), %v: %v",
					se.ErrorCode(), se.EnhancedStatusCode(), se.IsTemp(), tt.code, tt.enhanced, tt.temp, se)
			}
			if len(srv.Messages()) != 0 || srv.Received() != 0 || srv.Attempts() != 1 {
				t.Errorf("stored %d, received %d, attempts %d", len(srv.Messages()), srv.Received(), srv.Attempts())
			}

			srv.SetFaults(Faults{})
			if err := send(t, srv, newMsg(t, "a@example.test", "ok", "x", "")); err != nil {
				t.Fatalf("send after clearing faults: %v", err)
			}
			if srv.Received() != 1 || srv.Attempts() != 2 {
				t.Errorf("received %d, attempts %d", srv.Received(), srv.Attempts())
			}
		})
	}
}

func TestFailNext(t *testing.T) {
	srv := setup(t, Config{})
	srv.FailNext(2, 451)
	for i := range 2 {
		if se := sendErr(t, srv); se.ErrorCode() != 451 || !se.IsTemp() {
			t.Fatalf("attempt %d: %v", i+1, se)
		}
	}
	if err := send(t, srv, newMsg(t, "a@example.test", "third", "x", "")); err != nil {
		t.Fatalf("third attempt: %v", err)
	}
	if srv.Attempts() != 3 || srv.Received() != 1 || len(srv.Messages()) != 1 {
		t.Errorf("attempts %d, received %d, stored %d", srv.Attempts(), srv.Received(), len(srv.Messages()))
	}

	// FailNext takes precedence over the rates, then the rates apply again.
	srv.SetFaults(Faults{TempFailRate: 1})
	srv.FailNext(1, 550)
	if se := sendErr(t, srv); se.ErrorCode() != 550 || se.IsTemp() {
		t.Errorf("FailNext 550: %v", se)
	}
	if se := sendErr(t, srv); se.ErrorCode() != 451 {
		t.Errorf("after FailNext: %v", se)
	}

	defer func() {
		if recover() == nil {
			t.Error("FailNext(1, 250) did not panic")
		}
	}()
	srv.FailNext(1, 250)
}

func TestLatency(t *testing.T) {
	srv := setup(t, Config{})
	const latency = 300 * time.Millisecond
	srv.SetFaults(Faults{Latency: latency})
	if got := srv.Faults(); got.Latency != latency {
		t.Fatalf("Faults() = %+v", got)
	}
	start := time.Now()
	if err := send(t, srv, newMsg(t, "a@example.test", "slow", "x", "")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < latency {
		t.Errorf("send took %v, want at least %v", took, latency)
	}
}

func TestStopDuringLatency(t *testing.T) {
	srv := New(Config{})
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.SetFaults(Faults{Latency: time.Hour})
	sent := make(chan error, 1)
	go func() {
		sent <- smtp.SendMail(srv.SMTPAddr(), nil, "a@example.test", []string{"b@example.test"}, []byte("Subject: x\r\n\r\nx\r\n"))
	}()
	if err := srv.WaitAttempts(testContext(t), 1); err != nil {
		t.Fatalf("wait for the message to arrive: %v", err)
	}

	// Stop waiting out the hour's latency would run past testContext's
	// deadline and fail with it; how long it took is the machine's.
	start := time.Now()
	if err := srv.Stop(testContext(t)); err != nil {
		t.Fatalf("stop while a message is held by an hour's latency: %v", err)
	}
	t.Logf("stop took %v while a latency was in progress", time.Since(start).Round(time.Millisecond))
	if err := <-sent; err == nil {
		t.Error("send held by latency succeeded across stop")
	}
	if len(srv.Messages()) != 0 {
		t.Error("message held by latency was stored")
	}
}

func TestRefuse(t *testing.T) {
	srv := setup(t, Config{})

	// An open connection is dropped when Refuse goes on.
	open := newClient(t, srv)
	if err := open.DialWithContext(testContext(t)); err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	srv.SetFaults(Faults{Refuse: true})
	if err := open.Send(newMsg(t, "a@example.test", "on dropped conn", "x", "")); err == nil {
		t.Error("send over a connection open before Refuse succeeded")
	}

	// New connections fail, with go-mail and with net/smtp.
	if err := send(t, srv, newMsg(t, "a@example.test", "refused", "x", "")); err == nil {
		t.Error("go-mail send while refusing succeeded")
	}
	if c, err := smtp.Dial(srv.SMTPAddr()); err == nil {
		c.Close()
		t.Error("net/smtp dial while refusing succeeded")
	}

	srv.SetFaults(Faults{})
	if err := send(t, srv, newMsg(t, "a@example.test", "recovered", "x", "")); err != nil {
		t.Fatalf("send after Refuse=false: %v", err)
	}
	if m := srv.Messages(); len(m) != 1 || m[0].Subject != "recovered" {
		t.Errorf("messages: %+v", m)
	}
}

func TestSetFaultsClamps(t *testing.T) {
	srv := New(Config{})
	srv.SetFaults(Faults{TempFailRate: 2, PermFailRate: -1, Latency: -time.Second})
	if got := srv.Faults(); !reflect.DeepEqual(got, Faults{TempFailRate: 1}) {
		t.Errorf("Faults() = %+v", got)
	}
}

func TestWaitReceived(t *testing.T) {
	srv := setup(t, Config{})
	srv.FailNext(1, 451)
	for range 3 {
		send(t, srv, newMsg(t, "a@example.test", "x", "x", "")) //nolint:errcheck // the first fails on purpose
	}
	if err := srv.WaitReceived(testContext(t), 2); err != nil {
		t.Fatalf("wait for 2 of 2 accepted: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := srv.WaitReceived(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for a third message that never comes: %v", err)
	}
}

// TestHang: a message held by the Hang fault gets no answer until the
// fault is lifted; then it is answered and stored as usual.
func TestHang(t *testing.T) {
	srv := setup(t, Config{})
	srv.SetFaults(Faults{Hang: true})
	sent := make(chan error, 1)
	go func() {
		sent <- smtp.SendMail(srv.SMTPAddr(), nil, "a@example.test", []string{"b@example.test"}, []byte("Subject: held\r\n\r\nx\r\n"))
	}()
	if err := srv.WaitAttempts(testContext(t), 1); err != nil {
		t.Fatalf("wait for the message to arrive: %v", err)
	}
	select {
	case err := <-sent:
		t.Fatalf("the client got an answer while the server hangs: %v", err)
	default:
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("a held message was stored")
	}
	srv.SetFaults(Faults{})
	if err := <-sent; err != nil {
		t.Fatalf("send after the hang was lifted: %v", err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].Subject != "held" {
		t.Fatalf("messages %+v, want the held one", msgs)
	}
}
