package worker

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoggerWritesHclogKeys(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		want  string
	}{
		{name: "trace", level: slog.LevelDebug - 4, want: "trace"},
		{name: "debug", level: slog.LevelDebug, want: "debug"},
		{name: "info", level: slog.LevelInfo, want: "info"},
		{name: "warn", level: slog.LevelWarn, want: "warn"},
		{name: "error", level: slog.LevelError, want: "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			NewLogger(&buf, parseLevel("trace")).Log(t.Context(), tt.level, "hello", "k", 1)
			line := strings.TrimSpace(buf.String())
			require.NotContains(t, line, "\n", "one JSON object per line")
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m))
			assert.Equal(t, tt.want, m["@level"])
			assert.Equal(t, "hello", m["@message"])
			assert.Equal(t, float64(1), m["k"])
			_, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", m["@timestamp"].(string))
			assert.NoError(t, err, "go-plugin's relay parses this layout")
		})
	}
}
