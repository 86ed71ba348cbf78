// Package migrations embeds the numbered SQL files that build the schema.
//
// Files are named NNN_description.sql and run in order by the store's
// migration runner; a file never changes once released, a new one is added.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
