// Package web embeds the site's page templates, the email templates and the
// static assets. Templates are parsed once, at start, by their users.
package web

import "embed"

// Pages holds templates/layout.html and templates/pages/*.html.
//
//go:embed templates/layout.html templates/pages/*.html
var Pages embed.FS

// Emails holds templates/email/*: each email as a .txt and a .html file
// with a "subject" block.
//
//go:embed templates/email
var Emails embed.FS

// Static holds the assets served under /static/.
//
//go:embed static
var Static embed.FS
