package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Usage describes a command for its help text.
type Usage struct {
	// Prog is the binary's name ("supervisor").
	Prog string
	// Name is the command's name ("get"); it names the flag set.
	Name string
	// Synopsis follows the binary's name on the usage line ("get KEY [--latest] --initial-peers
	// MADDR..."); empty means "<Name> [flags]".
	Synopsis string
	// About explains the command, in paragraphs.
	About string
}

// NewFlagSet returns a flag set that reports errors instead of exiting and whose help ("-h",
// "--help") prints the usage line, About and every flag's default on stderr.
func NewFlagSet(u Usage, stderr io.Writer) *flag.FlagSet {
	synopsis := u.Synopsis
	if synopsis == "" {
		synopsis = u.Name + " [flags]"
	}
	fs := flag.NewFlagSet(u.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s %s\n\n%s\n\nflags:\n", u.Prog, synopsis, u.About)
		fs.PrintDefaults()
	}
	return fs
}

// List is a repeatable flag; each use may also hold several values separated by commas or spaces.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value: it appends the comma- or space-separated values of s.
func (l *List) Set(s string) error {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		*l = append(*l, f)
	}
	return nil
}

// Level is a log-level flag given by name: debug, info, warn or error (with slog's "+N"/"-N"
// offsets). The zero value is info.
type Level struct{ slog.Level }

// Set implements flag.Value.
func (l *Level) Set(s string) error {
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return errors.New("want debug, info, warn or error")
	}
	return nil
}

// positiveDuration is a duration flag that refuses zero and negative values.
type positiveDuration struct{ d *time.Duration }

func (p positiveDuration) String() string {
	if p.d == nil {
		return "0s"
	}
	return p.d.String()
}

func (p positiveDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 500ms, 30s or 2m")
	}
	if d <= 0 {
		return fmt.Errorf("%s is not positive", s)
	}
	*p.d = d
	return nil
}

// PositiveDuration defines a duration flag whose value must be positive: a zero or negative value
// is an error of the flag set's Parse (a usage error through ParseArgs).
func PositiveDuration(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	d := value
	fs.Var(positiveDuration{d: &d}, name, usage)
	return &d
}
