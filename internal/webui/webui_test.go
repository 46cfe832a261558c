package webui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// TestHandlerServesSharedAssets: plot.js and base.css under Prefix, with their content types;
// nothing else.
func TestHandlerServesSharedAssets(t *testing.T) {
	tests := []struct {
		name, ctype, contains string
		code                  int
	}{
		{name: "plot.js", ctype: "javascript", contains: "const Plot", code: http.StatusOK},
		{name: "base.css", ctype: "text/css", contains: "--s1:", code: http.StatusOK},
		{name: "missing.js", code: http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Prefix+tc.name, nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tc.code {
				t.Fatalf("GET %s%s: %d, want %d", Prefix, tc.name, rec.Code, tc.code)
			}
			if tc.code != http.StatusOK {
				return
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("GET %s%s: %.80q, want it to contain %q", Prefix, tc.name, body, tc.contains)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.Contains(ct, tc.ctype) {
				t.Errorf("GET %s%s: content type %q, want %s", Prefix, tc.name, ct, tc.ctype)
			}
		})
	}
}

// TestPageMux: a page's index at / (revalidated), its assets under /assets/, the shared ones under
// Prefix, and the caller's own endpoints next to them.
func TestPageMux(t *testing.T) {
	page := fstest.MapFS{
		"index.html": {Data: []byte("<!doctype html><title>page</title>")},
		"app.js":     {Data: []byte("const app = 1;")},
	}
	mux := PageMux(page)
	mux.HandleFunc("GET /data", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") })
	tests := []struct {
		name, path string
		code       int
		body       string // a part of it, when code is 200
		noCache    bool
	}{
		{name: "the page", path: "/", code: http.StatusOK, body: "<title>page</title>", noCache: true},
		{name: "its asset", path: "/assets/app.js", code: http.StatusOK, body: "const app"},
		{name: "a shared asset", path: Prefix + "plot.js", code: http.StatusOK, body: "function"},
		{name: "the caller's endpoint", path: "/data", code: http.StatusOK, body: "{}"},
		{name: "a missing asset", path: "/assets/missing.js", code: http.StatusNotFound},
		{name: "another path", path: "/other", code: http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tc.code {
				t.Fatalf("GET %s: %d, want %d (%.80q)", tc.path, rec.Code, tc.code, body)
			}
			if tc.code == http.StatusOK && !strings.Contains(string(body), tc.body) {
				t.Errorf("GET %s: %.80q, want it to contain %q", tc.path, body, tc.body)
			}
			if got := rec.Header().Get("Cache-Control") == "no-cache"; got != tc.noCache {
				t.Errorf("GET %s: Cache-Control %q", tc.path, rec.Header().Get("Cache-Control"))
			}
		})
	}
}
