package postfixtest

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maildirName is the one Maildir, under virtual_mailbox_base, that every
// accepted recipient is delivered to.
const maildirName = "box/"

// Message is one delivered email as Postfix wrote it to the Maildir.
type Message struct {
	// File is the Maildir file's path.
	File string
	// To is the recipient it was delivered to (Postfix's Delivered-To).
	To string
	// Header is the message's header, Postfix's additions included.
	Header mail.Header
	// Raw is the whole file.
	Raw []byte
}

// Messages reads every delivered message, oldest file name first.
func (s *Server) Messages() ([]Message, error) {
	var files []string
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(s.dir, "mail", maildirName, sub)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read maildir: %w", err)
		}
		for _, e := range entries {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	msgs := make([]Message, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read delivered message: %w", err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parse delivered message %s: %w", f, err)
		}
		msgs = append(msgs, Message{File: f, To: strings.ToLower(m.Header.Get("Delivered-To")), Header: m.Header, Raw: raw})
	}
	return msgs, nil
}

// Delivered counts the delivered messages per recipient address.
func (s *Server) Delivered() (map[string]int, error) {
	msgs, err := s.Messages()
	if err != nil {
		return nil, err
	}
	per := make(map[string]int, len(msgs))
	for _, m := range msgs {
		per[m.To]++
	}
	return per, nil
}
