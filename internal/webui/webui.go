// Package webui holds what the project's pages share — the supervisor's status page and the albert
// monitor's dashboard: assets served as they are, with no build step and nothing fetched from
// elsewhere. Standard library only.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

// assets are what both pages load (read-only): plot.js, the small SVG line plot they draw their
// series with, and base.css, their colours, frame and the look of the plots and tables.
//
//go:embed plot.js base.css
var assets embed.FS

// Prefix is where a page mounts Handler; its HTML loads the shared files from Prefix+"plot.js" and
// Prefix+"base.css" (before its own stylesheet).
const Prefix = "/assets/shared/"

// Handler serves the shared assets under Prefix (mount it with mux.Handle("GET "+Prefix, Handler())).
func Handler() http.Handler {
	return http.StripPrefix(Prefix, http.FileServerFS(assets))
}

// PageMux returns a mux that serves a page: page's index.html at / (revalidated on every load),
// page's other files under /assets/, and the shared assets under Prefix. The caller adds the data
// endpoints the page polls.
func PageMux(page fs.FS) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET "+Prefix, Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, page, "index.html")
	})
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(page)))
	return mux
}
