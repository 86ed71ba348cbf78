package http

import (
	"errors"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// formError is why a form could not be read: a status for the response,
// and either a message per field (the form is shown again) or a message
// for an error page.
type formError struct {
	Status  int
	Fields  map[string]string
	Title   string
	Message string
}

// decodeForm reads an urlencoded POST body and returns one value per named
// field. It refuses other content types, oversized bodies, repeated or
// missing fields, invalid UTF-8 and control characters that have no place
// in a one-line field (CR, LF, NUL and the rest of C0 but tab).
func decodeForm(r *http.Request, fields ...string) (map[string]string, *formError) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, &formError{Status: http.StatusUnsupportedMediaType, Title: "Unsupported form encoding",
			Message: "This form must be sent as application/x-www-form-urlencoded, as a browser sends it. Nothing was changed."}
	}
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &formError{Status: http.StatusRequestEntityTooLarge, Title: "Request too large",
				Message: "What was sent is larger than this form accepts. Nothing was changed."}
		}
		return nil, &formError{Status: http.StatusBadRequest, Title: "Malformed form",
			Message: "The form data could not be read. Nothing was changed; please send the form again."}
	}
	values := make(map[string]string, len(fields))
	problems := map[string]string{}
	for _, f := range fields {
		vs := r.PostForm[f]
		switch {
		case len(vs) == 0 || vs[0] == "":
			problems[f] = missingMessage(f)
		case len(vs) > 1:
			problems[f] = "This field was sent more than once; send it once."
		case !utf8.ValidString(vs[0]):
			problems[f] = "This contains bytes that are not valid text (UTF-8)."
		case hasControl(vs[0]):
			problems[f] = "This contains a line break or control character, which it cannot."
		default:
			values[f] = vs[0]
		}
	}
	if len(problems) > 0 {
		return values, &formError{Status: http.StatusBadRequest, Fields: problems}
	}
	return values, nil
}

func missingMessage(field string) string {
	switch field {
	case "email":
		return "Enter your email address."
	case "password":
		return "Enter a password."
	case "current_password":
		return "Enter your current password."
	}
	return "This field is required."
}

// hasControl reports C0 controls other than tab, and DEL.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return (r < 0x20 && r != '\t') || r == 0x7f
	})
}

// optionalField reads a field that may be absent or empty ("" then), with
// the checks decodeForm makes. Call it after decodeForm.
func optionalField(r *http.Request, name string) (string, *formError) {
	vs := r.PostForm[name]
	var problem string
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		problem = "This field was sent more than once; send it once."
	case !utf8.ValidString(vs[0]):
		problem = "This contains bytes that are not valid text (UTF-8)."
	case hasControl(vs[0]):
		problem = "This contains a line break or control character, which it cannot."
	default:
		return vs[0], nil
	}
	return "", &formError{Status: http.StatusBadRequest, Fields: map[string]string{name: problem}}
}
