package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Positionals are a command line's positional arguments, in order: all of Free, then all of
// Literal.
type Positionals struct {
	// Free are the ones before "--"; a command may read more into them (a multiaddr after
	// --initial-peers is one more initial peer, say).
	Free []string
	// Literal are the ones after "--", to be taken as they are.
	Literal []string
}

// All returns every positional argument, in order.
func (p Positionals) All() []string {
	return append(append([]string(nil), p.Free...), p.Literal...)
}

// ParseArgs parses the flags of fs anywhere among args and returns the positional arguments.
//
//   - "--" ends the flags: every later argument is positional (Literal), whatever it looks like.
//   - Before it, "-" alone and arguments that do not start with "-" are positional, and so is an
//     argument starting with "-" for which isValue(read, arg) is true, read being the positional
//     arguments before it (store's VALUE -1 after its KEY). nil isValue means never.
//   - Any other argument starting with "-" is a flag, and takes the next argument as its value
//     unless it is a boolean flag or has "=value"; that value may start with "-" (--ttl -1).
//
// "-h", "-help" and "--help" (when fs defines no such flag) print fs's help and return
// flag.ErrHelp. Every other error is a *UsageError: an unknown flag, a missing or bad flag value.
func ParseArgs(fs *flag.FlagSet, args []string, isValue func(read []string, arg string) bool) (Positionals, error) {
	return parseArgs(fs, args, isValue, true)
}

// ParseFlags parses a command line that holds flags only (in any order); a positional argument is
// a usage error.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args, nil, false)
	if err != nil {
		return err
	}
	if all := pos.All(); len(all) > 0 {
		return Usagef("%s takes no arguments, got %q", fs.Name(), all)
	}
	return nil
}

// parseArgs is ParseArgs; takesArgs says whether the command has positional arguments at all (an
// unknown flag's message then says how to pass one that starts with "-").
func parseArgs(fs *flag.FlagSet, args []string, isValue func(read []string, arg string) bool, takesArgs bool) (Positionals, error) {
	var pos Positionals
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos.Literal = append(pos.Literal, args[i+1:]...)
			return pos, nil
		}
		if len(a) < 2 || a[0] != '-' || (isValue != nil && isValue(pos.Free, a)) {
			pos.Free = append(pos.Free, a)
			continue
		}
		n, err := flagTokens(fs, args[i:], takesArgs)
		if err != nil {
			return Positionals{}, err
		}
		if err := fs.Parse(args[i : i+n]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return Positionals{}, err
			}
			return Positionals{}, &UsageError{Msg: err.Error()}
		}
		i += n - 1
	}
	return pos, nil
}

// boolFlag is the interface the flag package checks for flags that need no value.
type boolFlag interface{ IsBoolFlag() bool }

// flagTokens returns how many arguments the flag at args[0] spans: 2 when it is a defined flag
// that takes a value and has no "=value", else 1 (the flag package reports a missing value). An
// undefined flag is a usage error; with takesArgs the message says how to pass an argument that
// starts with "-".
func flagTokens(fs *flag.FlagSet, args []string, takesArgs bool) (int, error) {
	name := strings.TrimPrefix(strings.TrimPrefix(args[0], "-"), "-")
	name, _, hasValue := strings.Cut(name, "=")
	if name == "" || name[0] == '-' {
		return 1, nil // bad syntax: fs.Parse reports it
	}
	f := fs.Lookup(name)
	if f == nil && (name == "h" || name == "help") {
		return 1, nil // fs.Parse prints the help
	}
	if f == nil {
		msg := fmt.Sprintf("flag provided but not defined: %s", args[0])
		if takesArgs {
			msg += ` (an argument that starts with "-" goes after "--")`
		}
		return 0, &UsageError{Msg: msg}
	}
	if b, ok := f.Value.(boolFlag); (ok && b.IsBoolFlag()) || hasValue || len(args) < 2 {
		return 1, nil
	}
	return 2, nil
}
