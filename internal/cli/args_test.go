package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testFlags is a flag set like a command's: a list, a value flag, a bool flag and a duration.
type testFlags struct {
	fs      *flag.FlagSet
	peers   List
	ttl     *float64
	verbose *bool
	period  *time.Duration
}

func newTestFlags() *testFlags {
	var out bytes.Buffer
	f := &testFlags{fs: NewFlagSet(Usage{Prog: "prog", Name: "store", Synopsis: "store KEY VALUE"}, &out)}
	f.fs.Var(&f.peers, "initial-peers", "peers")
	f.ttl = f.fs.Float64("ttl", 300, "ttl")
	f.verbose = f.fs.Bool("verbose", false, "verbose")
	f.period = PositiveDuration(f.fs, "period", time.Second, "period")
	return f
}

// numberAfterKey is a store-like isValue: after one positional (the KEY), a JSON value is a VALUE.
func numberAfterKey(read []string, arg string) bool {
	return len(read) == 1 && json.Valid([]byte(arg))
}

func TestParseArgsShapes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		isValue  func([]string, string) bool
		free     []string
		literal  []string
		peers    List
		ttl      float64
		verbose  bool
		usageMsg string // non-empty: a *UsageError containing this
	}{
		{name: "positionals only", args: []string{"k", "1"}, free: []string{"k", "1"}},
		{name: "flags first", args: []string{"--ttl", "5", "--verbose", "k", "1"}, free: []string{"k", "1"}, ttl: 5, verbose: true},
		{name: "flags last", args: []string{"k", "1", "--ttl=5", "-verbose"}, free: []string{"k", "1"}, ttl: 5, verbose: true},
		{name: "flags between", args: []string{"k", "--ttl", "5", "1"}, free: []string{"k", "1"}, ttl: 5},
		{name: "a flag value that starts with a dash", args: []string{"k", "--ttl", "-1", "1"}, free: []string{"k", "1"}, ttl: -1},
		{name: "a negative value after the key", args: []string{"k", "-1"}, isValue: numberAfterKey, free: []string{"k", "-1"}},
		{name: "a negative value then flags", args: []string{"k", "-1.5e3", "--initial-peers", "A,B"}, isValue: numberAfterKey, free: []string{"k", "-1.5e3"}, peers: List{"A", "B"}},
		{name: "flags then a negative value", args: []string{"--initial-peers", "A", "k", "--ttl", "7", "-1"}, isValue: numberAfterKey, free: []string{"k", "-1"}, peers: List{"A"}, ttl: 7},
		{name: "a negative key is a flag", args: []string{"-1", "k"}, isValue: numberAfterKey, usageMsg: `flag provided but not defined: -1 (an argument that starts with "-" goes after "--")`},
		{name: "without isValue a negative value is a flag", args: []string{"k", "-1"}, usageMsg: "flag provided but not defined: -1"},
		{name: "a third dash argument is a flag", args: []string{"k", "-1", "-2"}, isValue: numberAfterKey, usageMsg: "flag provided but not defined: -2"},
		{name: "double dash ends the flags", args: []string{"--ttl", "5", "--", "-k", "-1", "--verbose"}, free: nil, literal: []string{"-k", "-1", "--verbose"}, ttl: 5},
		{name: "double dash after the key", args: []string{"k", "--", "-1"}, free: []string{"k"}, literal: []string{"-1"}},
		{name: "double dash with flags after the positionals", args: []string{"--initial-peers", "A", "--", "k", "-1"}, literal: []string{"k", "-1"}, peers: List{"A"}},
		{name: "a second double dash is literal", args: []string{"--", "--", "x"}, literal: []string{"--", "x"}},
		{name: "a lone dash is positional", args: []string{"-", "x"}, free: []string{"-", "x"}},
		{name: "an unknown flag", args: []string{"k", "--bogus"}, usageMsg: "flag provided but not defined: --bogus"},
		{name: "an unknown flag with a value", args: []string{"--bogus=1", "k"}, usageMsg: "flag provided but not defined: --bogus=1"},
		{name: "a missing flag value", args: []string{"k", "--ttl"}, usageMsg: "flag needs an argument"},
		{name: "a bad flag value", args: []string{"--ttl", "soon", "k"}, usageMsg: `invalid value "soon"`},
		{name: "bad flag syntax", args: []string{"---ttl", "5"}, usageMsg: "bad flag syntax"},
		{name: "a non-positive duration", args: []string{"--period", "0s"}, usageMsg: "0s is not positive"},
		{name: "a bad duration", args: []string{"--period=-"}, usageMsg: "want a duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFlags()
			pos, err := ParseArgs(f.fs, tc.args, tc.isValue)
			if tc.usageMsg != "" {
				var u *UsageError
				require.ErrorAs(t, err, &u)
				assert.Contains(t, u.Msg, tc.usageMsg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.free, pos.Free, "free")
			assert.Equal(t, tc.literal, pos.Literal, "literal")
			assert.Equal(t, append(append([]string(nil), tc.free...), tc.literal...), pos.All())
			assert.Equal(t, tc.peers, f.peers)
			want := tc.ttl
			if want == 0 {
				want = 300
			}
			assert.Equal(t, want, *f.ttl) // exact: parsed from text
			assert.Equal(t, tc.verbose, *f.verbose)
		})
	}
}

func TestParseArgsHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var out bytes.Buffer
			fs := NewFlagSet(Usage{Prog: "prog", Name: "get", About: "Gets a key."}, &out)
			fs.Bool("latest", false, "search for the latest value")
			_, err := ParseArgs(fs, []string{"k", arg}, nil)
			require.ErrorIs(t, err, flag.ErrHelp)
			assert.Contains(t, out.String(), "usage: prog get [flags]\n\nGets a key.\n\nflags:\n")
			assert.Contains(t, out.String(), "-latest")
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "flags", args: []string{"--verbose", "--ttl", "1"}},
		{name: "a positional", args: []string{"--verbose", "extra"}, wantErr: `store takes no arguments, got ["extra"]`},
		{name: "a literal", args: []string{"--", "-x"}, wantErr: `store takes no arguments, got ["-x"]`},
		{name: "an unknown flag has no hint", args: []string{"-1"}, wantErr: "flag provided but not defined: -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ParseFlags(newTestFlags().fs, tc.args)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			var u *UsageError
			require.ErrorAs(t, err, &u)
			assert.Equal(t, tc.wantErr, u.Msg)
		})
	}
}

func TestListAndLevelFlags(t *testing.T) {
	var l List
	require.NoError(t, l.Set("a,b c"))
	require.NoError(t, l.Set("d"))
	assert.Equal(t, List{"a", "b", "c", "d"}, l)
	assert.Equal(t, "a,b,c,d", l.String())

	tests := []struct {
		in   string
		want Level
		bad  bool
	}{
		{in: "debug", want: Level{-4}},
		{in: "WARN", want: Level{4}},
		{in: "error", want: Level{8}},
		{in: "info+2", want: Level{2}},
		{in: "loud", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var lv Level
			err := lv.Set(tc.in)
			if tc.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, lv)
		})
	}
}

func TestPositiveDurationDefault(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	d := PositiveDuration(fs, "period", 3*time.Second, "")
	require.NoError(t, fs.Parse(nil))
	assert.Equal(t, 3*time.Second, *d)
	require.NoError(t, fs.Parse([]string{"--period", "250ms"}))
	assert.Equal(t, 250*time.Millisecond, *d)
	assert.Equal(t, "3s", fs.Lookup("period").DefValue)
	require.Error(t, fs.Parse([]string{"--period", "-1s"}))
	assert.Equal(t, 250*time.Millisecond, *d, "a refused value changes nothing")
	assert.False(t, errors.Is(fs.Parse([]string{"--period", "1m"}), flag.ErrHelp))
}
