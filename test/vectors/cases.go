package vectors

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Case is one case of a vector list, decoded on its own.
type Case[T any] struct {
	// Name is the case's label: the name of its subtest, never a key (vectors/README.md, "Case
	// names are labels, not keys").
	Name string
	// Data is the decoded case; meaningful only when Err is nil.
	Data T
	// Err says why the case could not be decoded into T.
	Err error
}

// Cases decodes every case of the list section of the vector file into T, one case at a time, so
// that a case the test cannot interpret is reported by its name while the others still decode. A
// missing or empty list fails the test: a vector test that runs no case asserts nothing.
func Cases[T any](tb testing.TB, file, section string) []Case[T] {
	tb.Helper()
	var sections map[string]json.RawMessage
	Load(tb, file, &sections)
	raw, ok := sections[section]
	if !ok {
		tb.Fatalf("%s has no list %q", file, section)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		tb.Fatalf("%s %s is not a list of cases: %v", file, section, err)
	}
	if len(items) == 0 {
		tb.Fatalf("%s %s holds no case", file, section)
	}
	out := make([]Case[T], len(items))
	for i, item := range items {
		var head struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(item, &head); err != nil || head.Name == "" {
			tb.Fatalf("%s %s: a case without a name: %.200s", file, section, item)
		}
		out[i].Name = head.Name
		if err := json.Unmarshal(item, &out[i].Data); err != nil {
			out[i].Err = fmt.Errorf("case %s of %s %s cannot be read: %w", head.Name, file, section, err)
		}
	}
	return out
}

// Run runs fn on every case of the list section of the vector file, each as a subtest named after
// the case. A case that does not decode fails its subtest with the reason; it is never skipped.
func Run[T any](t *testing.T, file, section string, fn func(t *testing.T, c T)) {
	t.Helper()
	for _, c := range Cases[T](t, file, section) {
		t.Run(c.Name, func(t *testing.T) {
			if c.Err != nil {
				t.Fatal(c.Err)
			}
			fn(t, c.Data)
		})
	}
}

// Fixed reads a case's port_should and expected_fixed (vectors/README.md, "Quirks"): "" and "keep"
// give nil (the case asserts hivemind's recorded outcome); "fix" gives expectedFixed, the outcome
// of hivemind with the quirk fixed, which the port must produce instead (an error when the case has
// none); any other value is an error.
func Fixed[T any](portShould string, expectedFixed *T) (*T, error) {
	switch portShould {
	case "", "keep":
		return nil, nil
	case "fix":
		if expectedFixed == nil {
			return nil, errors.New("port_should is fix but expected_fixed is missing")
		}
		return expectedFixed, nil
	}
	return nil, fmt.Errorf("port_should %q: want keep or fix", portShould)
}

// Kinds maps the error kinds of the vectors (vectors/README.md, "Error kinds used") to a package's
// sentinel errors.
type Kinds map[string]error

// Match returns nil if got is the recorded failure: got wraps the sentinel mapped to want.Kind.
// Only the kind is compared; the recorded texts are informative. A kind the map does not know is an
// error too (the test cannot tell that failure apart), and so is a nil got.
func (k Kinds) Match(want Error, got error) error {
	sentinel, ok := k[want.Kind]
	if !ok {
		return fmt.Errorf("error kind %q has no Go error in this test (recorded: %s)", want.Kind, want.text())
	}
	if got == nil {
		return fmt.Errorf("no error, want kind %q (recorded: %s)", want.Kind, want.text())
	}
	if !errors.Is(got, sentinel) {
		return fmt.Errorf("error %q, want kind %q (%v; recorded: %s)", got, want.Kind, sentinel, want.text())
	}
	return nil
}

// Require fails the test unless got is the recorded failure (see Match).
func (k Kinds) Require(tb testing.TB, want Error, got error) {
	tb.Helper()
	if err := k.Match(want, got); err != nil {
		tb.Fatal(err)
	}
}

func (e Error) text() string {
	return strings.TrimSpace(e.Python + " " + e.Go)
}

// Resolve returns the index of the entry that a reference field names (rsa_validator.json's
// validator_key names a key, schema.json's validator names a validator). Such a reference is the
// name of another list's entry; an entry with that name is the answer. A relabelled copy of the
// vectors (../shared/tools/relabel-vectors) renames the entries but not the references to them:
// then the answer is the entry that explains every case citing the reference, i.e. for which
// mismatches(i), the number of those cases entry i does not reproduce, is 0. Entries that explain
// them equally are interchangeable for these cases, and the first is returned. When no entry
// explains them, the error names the closest entry and its count.
func Resolve(ref string, names []string, mismatches func(i int) int) (int, error) {
	for i, n := range names {
		if n == ref {
			return i, nil
		}
	}
	best, bestCount := -1, 0
	for i := range names {
		c := mismatches(i)
		if c == 0 {
			return i, nil
		}
		if best < 0 || c < bestCount {
			best, bestCount = i, c
		}
	}
	if best < 0 {
		return -1, fmt.Errorf("reference %q: no entry to resolve it to", ref)
	}
	return -1, fmt.Errorf("reference %q names no entry, and no entry explains the cases that cite it (closest: %q, %d cases differ)", ref, names[best], bestCount)
}

// Order finds an order of the n steps of a recorded sequence in which every step replays as
// recorded. A sequence's steps (dht_proto.json's exchanges) happened in the order of their list, but
// a relabelled copy shuffles every list of named cases, so the list order is only the first guess:
// replays(order) must replay the steps order[0], order[1], ... on a fresh subject and report whether
// each reproduced its recording. The search extends the longest replaying prefix depth first, trying
// the remaining steps in list order, and gives up after budget replays. On failure it returns the
// longest prefix that replayed.
func Order(n, budget int, replays func(order []int) bool) (order []int, err error) {
	used := make([]bool, n)
	prefix := make([]int, 0, n)
	var best []int
	calls := 0
	var extend func() bool
	extend = func() bool {
		if len(prefix) == n {
			return true
		}
		for i := range n {
			if used[i] || calls >= budget {
				continue
			}
			calls++
			prefix = append(prefix, i)
			if replays(prefix) {
				if len(prefix) > len(best) {
					best = append(best[:0], prefix...)
				}
				used[i] = true
				if extend() {
					return true
				}
				used[i] = false
			}
			prefix = prefix[:len(prefix)-1]
		}
		return false
	}
	if extend() {
		return prefix, nil
	}
	if calls >= budget {
		return best, fmt.Errorf("no order of the %d steps replays within %d replays (the longest prefix that replays: %d steps)", n, budget, len(best))
	}
	return best, fmt.Errorf("no order of the %d steps replays as recorded (the longest prefix that replays: %d steps)", n, len(best))
}
