package worker

import (
	"io"
	"log/slog"
	"strings"
)

// hclogTimeFormat is the @timestamp layout go-plugin's stderr relay parses.
const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// NewLogger returns a slog logger that writes one JSON object per line to w with hclog's keys
// (@level, @message, @timestamp; attributes as further keys), the format go-plugin's stderr relay and
// ipc's log relay understand. A worker logs only through it, on its original stderr.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: hclogKeys,
	}))
}

// hclogKeys renames slog's built-in keys to hclog's and formats their values as hclog does.
func hclogKeys(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		return slog.String("@timestamp", a.Value.Time().Format(hclogTimeFormat))
	case slog.LevelKey:
		return slog.String("@level", hclogLevel(a.Value.Any()))
	case slog.MessageKey:
		return slog.String("@message", a.Value.String())
	}
	return a
}

// hclogLevel maps a slog level to hclog's level names (debug below info, trace below debug).
func hclogLevel(v any) string {
	l, ok := v.(slog.Level)
	if !ok {
		return "info"
	}
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}

// parseLevel reads a level name (trace, debug, info, warn, error); anything else is info.
func parseLevel(s string) slog.Level {
	switch strings.ToLower(strings.TrimSpace(s)) {
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
