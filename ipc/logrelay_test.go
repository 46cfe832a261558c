package ipc

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingHandler keeps every record.
type recordingHandler struct {
	mu    sync.Mutex
	recs  []slog.Record
	attrs []slog.Attr
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.AddAttrs(h.attrs...)
	h.recs = append(h.recs, r)
	return nil
}
func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordingHandler{attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h *recordingHandler) WithGroup(string) slog.Handler { return h }

func attrs(r slog.Record) map[string]any {
	m := map[string]any{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	return m
}

func TestLogRelayKeepsLevelsAndAttributes(t *testing.T) {
	h := &recordingHandler{}
	relay := newLogRelay(slog.New(h))
	input := strings.Join([]string{
		`{"@level":"warn","@message":"disk slow","@timestamp":"2026-01-02T03:04:05.000000Z","ms":12}`,
		`{"@level":"debug","@message":"dbg","@module":"go-plugin"}`,
		`plain text line`,
		`panic: boom`,
		`goroutine 1 [running]:`,
		``,
	}, "\n")
	// Written in odd pieces, as a pipe delivers them.
	for chunk := range slices.Chunk([]byte(input), 7) {
		_, err := relay.Write(chunk)
		require.NoError(t, err)
	}
	require.Len(t, h.recs, 5)
	assert.Equal(t, slog.LevelWarn, h.recs[0].Level)
	assert.Equal(t, "disk slow", h.recs[0].Message)
	assert.Equal(t, 2026, h.recs[0].Time.Year())
	assert.Equal(t, float64(12), attrs(h.recs[0])["ms"])
	assert.Equal(t, slog.LevelDebug, h.recs[1].Level)
	assert.Equal(t, "go-plugin", attrs(h.recs[1])["@module"])
	assert.Equal(t, slog.LevelInfo, h.recs[2].Level)
	assert.Equal(t, "plain text line", h.recs[2].Message)
	assert.Equal(t, slog.LevelError, h.recs[3].Level, "a panic and what follows are errors")
	assert.Equal(t, slog.LevelError, h.recs[4].Level)
}

func TestLogRelayCutsHugeLines(t *testing.T) {
	h := &recordingHandler{}
	relay := newLogRelay(slog.New(h))
	_, _ = relay.Write(bytes.Repeat([]byte("x"), maxLogLine+10))
	require.Len(t, h.recs, 1)
	assert.Len(t, h.recs[0].Message, maxLogLine+10)
}
