package mail

import "testing"

func TestAppendDotStuffed(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},                       // bare line feeds become CRLF
		{"a\r\nb", "a\r\nb\r\n"},                       // the last line is ended
		{".\r\n", "..\r\n"},                            // a lone dot would end the message
		{"a\r\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n"}, // every leading dot is doubled
		{"a.b\r\n. \r\n", "a.b\r\n.. \r\n"},            // only at the start of a line
		{"\r\n\r\n.\n", "\r\n\r\n..\r\n"},              // empty lines
		{"x\r.y\r\n", "x\r.y\r\n"},                     // a bare CR is not a line end
	} {
		if got := string(appendDotStuffed(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("appendDotStuffed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
