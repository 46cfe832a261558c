// Package webui holds what the project's pages share — the supervisor's status page and the albert
// monitor's dashboard: assets served as they are, with no build step and nothing fetched from
// elsewhere. Standard library only.
package webui

import (
	"embed"
	"net/http"
)

// assets is plot.js, the small SVG line plot both pages draw their series with (read-only).
//
//go:embed plot.js
var assets embed.FS

// Prefix is where a page mounts Handler; its HTML loads the shared script from Prefix+"plot.js".
const Prefix = "/assets/shared/"

// Handler serves the shared assets under Prefix (mount it with mux.Handle("GET "+Prefix, Handler())).
func Handler() http.Handler {
	return http.StripPrefix(Prefix, http.FileServerFS(assets))
}
