package ipc

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// logRelay parses a worker's stderr, line by line, into slog records: JSON lines with hclog's keys
// (@level, @message, @timestamp; other keys become attributes) keep their level and message; other
// lines are logged verbatim at info, or at error once a Go panic or fatal error starts.
type logRelay struct {
	logger *slog.Logger

	mu      sync.Mutex
	buf     []byte
	inPanic bool
}

// maxLogLine bounds one buffered line; longer lines are cut.
const maxLogLine = 256 << 10

func newLogRelay(logger *slog.Logger) *logRelay { return &logRelay{logger: logger} }

// Write buffers p and logs every complete line.
func (r *logRelay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	for {
		i := bytes.IndexByte(r.buf, '\n')
		if i < 0 {
			break
		}
		r.line(r.buf[:i])
		r.buf = r.buf[i+1:]
	}
	if len(r.buf) > maxLogLine {
		r.line(r.buf)
		r.buf = r.buf[:0]
	}
	if len(r.buf) == 0 {
		r.buf = nil // let a large drained buffer go
	}
	return len(p), nil
}

func (r *logRelay) line(b []byte) {
	b = bytes.TrimRight(b, "\r")
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	ctx := context.Background()
	if b[0] == '{' {
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			if _, ok := m["@message"]; ok {
				r.structured(ctx, m)
				return
			}
		}
	}
	s := string(b)
	if strings.HasPrefix(s, "panic: ") || strings.HasPrefix(s, "fatal error: ") {
		r.inPanic = true
	}
	level := slog.LevelInfo
	if r.inPanic {
		level = slog.LevelError
	}
	r.logger.Log(ctx, level, s)
}

func (r *logRelay) structured(ctx context.Context, m map[string]any) {
	msg, _ := m["@message"].(string)
	lvl, _ := m["@level"].(string)
	ts, _ := m["@timestamp"].(string)
	delete(m, "@message")
	delete(m, "@level")
	delete(m, "@timestamp")
	delete(m, "@caller")
	level := relayLevel(lvl)
	if !r.logger.Enabled(ctx, level) {
		return
	}
	rec := slog.NewRecord(time.Now(), level, msg, 0)
	if t, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", ts); err == nil {
		rec.Time = t
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		rec.AddAttrs(slog.Any(k, m[k]))
	}
	_ = r.logger.Handler().Handle(ctx, rec)
}

// relayLevel maps hclog's level names onto slog levels (trace is below debug).
func relayLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "trace":
		return slog.LevelDebug - 4
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
