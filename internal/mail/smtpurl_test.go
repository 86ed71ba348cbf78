package mail_test

import (
	"strings"
	"testing"

	"signup/internal/mail"
)

func TestParseSMTPURL(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		want    mail.SMTPServer
		wantErr string // a part of the error; "" for success
	}{
		{raw: "smtp://mail.example.com", want: mail.SMTPServer{Host: "mail.example.com", Port: 25}},
		{raw: "smtp://127.0.0.1:2525", want: mail.SMTPServer{Host: "127.0.0.1", Port: 2525}},
		{raw: "smtp://[::1]:2525/", want: mail.SMTPServer{Host: "::1", Port: 2525}},
		{raw: "smtp://mail.example.com:587?starttls=required",
			want: mail.SMTPServer{Host: "mail.example.com", Port: 587, TLS: mail.STARTTLSRequired}},
		{raw: "smtp://mail.example.com?starttls=opportunistic", want: mail.SMTPServer{Host: "mail.example.com", Port: 25}},
		{raw: "smtps://mail.example.com", want: mail.SMTPServer{Host: "mail.example.com", Port: 465, TLS: mail.ImplicitTLS}},
		{raw: "SMTPS://mail.example.com:4650", want: mail.SMTPServer{Host: "mail.example.com", Port: 4650, TLS: mail.ImplicitTLS}},
		{raw: "smtp://apikey:s%40cr%2Fet@mail.example.com:587?starttls=required",
			want: mail.SMTPServer{Host: "mail.example.com", Port: 587, Username: "apikey", Password: "s@cr/et", TLS: mail.STARTTLSRequired}},
		{raw: "smtps://user@mail.example.com", want: mail.SMTPServer{Host: "mail.example.com", Port: 465, Username: "user", TLS: mail.ImplicitTLS}},

		{raw: "", wantErr: "is empty"},
		{raw: "http://user:hunter2@mail.example.com", wantErr: `has scheme "http"`},
		{raw: "mail.example.com:25", wantErr: "scheme"},
		{raw: "smtp://user:hunter2@mail.example.com:0", wantErr: `has port "0"`},
		{raw: "smtp://user:hunter2@mail.example.com:70000", wantErr: `has port "70000"`},
		{raw: "smtp://user:hunter2@mail.example.com:smtp", wantErr: "is not a URL"},
		{raw: "smtp://user:hunter2@", wantErr: "has no host"},
		{raw: "smtp:user:hunter2", wantErr: "has no host"},
		{raw: "smtp://user:hunter2@mail.example.com/inbox", wantErr: "has a path"},
		{raw: "smtp://user:hunter#2@mail.example.com", wantErr: "is not a URL"},
		{raw: "smtp://user:hunter2@mail.example.com#x", wantErr: "fragment"},
		{raw: "smtp://user:hunter2@mail.example.com?starttls=always", wantErr: "starttls=always"},
		{raw: "smtp://user:hunter2@mail.example.com?starttls=required&starttls=required", wantErr: "starttls="},
		{raw: "smtp://user:hunter2@mail.example.com?tls=on", wantErr: `unknown parameter "tls"`},
		{raw: "smtps://user:hunter2@mail.example.com?starttls=required", wantErr: "TLS already"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := mail.ParseSMTPURL(tc.raw)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("ParseSMTPURL = %+v, %v; want %+v", got, err, tc.want)
				}
				if strings.Contains(got.String(), got.Password) && got.Password != "" {
					t.Errorf("String() %q shows the password", got.String())
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSMTPURL = %+v, want an error containing %q", got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter") {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestSMTPServerString(t *testing.T) {
	s := mail.SMTPServer{Host: "mail.example.com", Port: 587, Username: "u", Password: "hunter2", TLS: mail.STARTTLSRequired}
	if got, want := s.String(), "smtp://u@mail.example.com:587?starttls=required"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	s = mail.SMTPServer{Host: "mail.example.com", Port: 465, TLS: mail.ImplicitTLS}
	if got, want := s.String(), "smtps://mail.example.com:465"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
