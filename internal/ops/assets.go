package ops

import "embed"

// assets are the dashboard's template and style sheet.
//
//go:embed templates/dashboard.html templates/ops.css
var assets embed.FS
