package ipc

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// FuzzLogRelay feeds arbitrary bytes, as a worker writes them to stderr, to the log relay: it never
// panics; the records do not depend on how the bytes are split across writes; every complete
// non-blank line is one record (a partial last line none); a line that is not an hclog JSON object
// is logged verbatim, at info until a Go panic starts and at error from then on; an hclog line
// keeps its message.
func FuzzLogRelay(f *testing.F) {
	for _, s := range []string{
		"plain text line\n",
		`{"@level":"warn","@message":"disk slow","@timestamp":"2026-01-02T03:04:05.000000Z","ms":12}` + "\n",
		`{"@level":"trace","@message":"t","@module":"dht","@caller":"x.go:1"}` + "\r\n",
		`{"@message":5,"@level":["x"],"@timestamp":{}}` + "\n",
		`{"@level":"error"}` + "\n",
		`{"@message":"a"} trailing` + "\n",
		"panic: boom\ngoroutine 1 [running]:\n" + `{"@level":"info","@message":"after"}` + "\nmain.main()\n",
		"fatal error: concurrent map writes\n\n\t\r\n",
		"no newline at the end",
		"\n\n\r\n \n",
		"{\n",
		"\x00\xff\xfe\n",
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		if len(data) > maxLogLine {
			return // a longer line is cut where the buffer happens to overflow
		}
		whole := relayRecords(data)
		i := int(split) % (len(data) + 1)
		parts := relayRecords(data[:i], data[i:])
		bytewise := [][]byte{}
		if len(data) <= 512 {
			for j := range data {
				bytewise = append(bytewise, data[j:j+1])
			}
		}
		if d := diffRecords(whole, parts); d != "" {
			t.Fatalf("%q in one write vs split at %d: %s", data, i, d)
		}
		if len(bytewise) > 0 {
			if d := diffRecords(whole, relayRecords(bytewise...)); d != "" {
				t.Fatalf("%q in one write vs byte by byte: %s", data, d)
			}
		}

		lines := bytes.Split(data, []byte("\n"))
		lines = lines[:len(lines)-1] // the partial last line is not logged (yet)
		var want []string
		for _, l := range lines {
			l = bytes.TrimRight(l, "\r")
			if len(bytes.TrimSpace(l)) > 0 {
				want = append(want, string(l))
			}
		}
		if len(whole) != len(want) {
			t.Fatalf("%q: %d records for %d non-blank lines", data, len(whole), len(want))
		}
		inPanic := false
		for j, line := range want {
			r := whole[j]
			var m map[string]any
			structured := false
			if line[0] == '{' && json.Unmarshal([]byte(line), &m) == nil {
				_, structured = m["@message"]
			}
			if structured {
				msg, _ := m["@message"].(string)
				if r.Message != msg {
					t.Fatalf("line %q: message %q, want %q", line, r.Message, msg)
				}
				continue
			}
			if r.Message != line {
				t.Fatalf("line %q logged as %q", line, r.Message)
			}
			if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
				inPanic = true
			}
			wantLevel := slog.LevelInfo
			if inPanic {
				wantLevel = slog.LevelError
			}
			if r.Level != wantLevel {
				t.Fatalf("line %q at level %v, want %v", line, r.Level, wantLevel)
			}
		}
	})
}

// relayRecords writes the chunks to a new relay and returns the records it logged.
func relayRecords(chunks ...[]byte) []slog.Record {
	h := &recordingHandler{}
	relay := newLogRelay(slog.New(h))
	for _, c := range chunks {
		if n, err := relay.Write(c); n != len(c) || err != nil {
			panic("logRelay.Write must take every byte")
		}
	}
	return h.recs
}

// diffRecords compares records by level, message and attributes.
func diffRecords(a, b []slog.Record) string {
	if len(a) != len(b) {
		return "record counts differ"
	}
	for i := range a {
		if a[i].Level != b[i].Level || a[i].Message != b[i].Message {
			return "record " + a[i].Message + " differs from " + b[i].Message
		}
		if ja, jb := attrJSON(a[i]), attrJSON(b[i]); ja != jb {
			return "attributes " + ja + " differ from " + jb
		}
	}
	return ""
}

func attrJSON(r slog.Record) string {
	var keys []string
	vals := []any{}
	r.Attrs(func(a slog.Attr) bool {
		keys = append(keys, a.Key)
		vals = append(vals, a.Value.Any())
		return true
	})
	b, _ := json.Marshal([]any{keys, vals})
	return string(b)
}
