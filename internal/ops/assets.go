package ops

import "embed"

// assets are the dashboard's and the sign-in page's templates and the style sheet.
//
//go:embed templates/dashboard.html templates/login.html templates/ops.css
var assets embed.FS
