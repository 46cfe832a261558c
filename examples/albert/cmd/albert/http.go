package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hivemind-go/hivemind/examples/albert"
)

// httpFlag registers --http, the dashboard's address.
func httpFlag(fs *flag.FlagSet) *string {
	return fs.String("http", "", "serve the monitor's dashboard on this address (host:port, e.g. 127.0.0.1:8080; port 0 picks one)")
}

// serveDashboard serves m's dashboard on addr, prints its URL and returns a function that stops it.
// An empty addr serves nothing.
func serveDashboard(addr string, m *albert.Monitor, stdout io.Writer, logger *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w (choose another with --http)", addr, err)
	}
	srv := &http.Server{Handler: albert.DashboardHandler(m), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("dashboard stopped", "error", err)
		}
	}()
	fmt.Fprintf(stdout, "Dashboard: http://%s/\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
