package validator

import (
	"fmt"
	"slices"
	"sync"

	"github.com/hivemind-go/hivemind/dht"
)

// Composite is hivemind's CompositeValidator: a list of validators kept sorted by ascending priority
// (stable: equal priorities keep the order they were added in).
//
//   - SignValue applies every validator in ascending priority, each signing the previous output.
//   - Validate applies them in descending priority and requires all to accept; after each one but the
//     last, the value is replaced by that validator's StripValue before the next sees it (so the
//     schema sees a value without signatures).
//   - StripValue strips in descending priority.
//
// An empty Composite accepts everything and signs and strips nothing. Extend merges validators of the
// same kind (two Schemas become one; a second RSASignature is absorbed by the first). A Composite is
// safe for concurrent use; Extend may run concurrently with validation.
type Composite struct {
	mu         sync.RWMutex
	validators []dht.RecordValidator
}

// NewComposite returns a composite of the given validators (see Extend).
func NewComposite(validators ...dht.RecordValidator) *Composite {
	c := &Composite{}
	c.Extend(validators...)
	return c
}

// Extend adds validators like hivemind's CompositeValidator.extend: each new validator is offered to
// the existing ones in order (existing.MergeWith(new)); if none absorbs it, it is appended. The list
// is then re-sorted by priority. A nil validator, or c itself, is ignored.
func (c *Composite) Extend(validators ...dht.RecordValidator) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := slices.Clone(c.validators)
	for _, nv := range validators {
		if nv == nil || nv == dht.RecordValidator(c) {
			continue
		}
		merged := false
		for _, existing := range list {
			if existing.MergeWith(nv) {
				merged = true
				break
			}
		}
		if !merged {
			list = append(list, nv)
		}
	}
	slices.SortStableFunc(list, func(a, b dht.RecordValidator) int { return a.Priority() - b.Priority() })
	c.validators = list
}

// Validators returns the current validators in ascending priority (a copy of the list).
func (c *Composite) Validators() []dht.RecordValidator {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.validators)
}

// snapshot returns the list without copying; Extend never modifies a published list in place.
func (c *Composite) snapshot() []dht.RecordValidator {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.validators
}

// Validate implements dht.RecordValidator.
func (c *Composite) Validate(r dht.Record) (bool, string) {
	list := c.snapshot()
	for i := len(list) - 1; i >= 0; i-- {
		v := list[i]
		if ok, reason := v.Validate(r); !ok {
			return false, fmt.Sprintf("%T: %s", v, reason)
		}
		if i > 0 {
			r.Value = v.StripValue(r)
		}
	}
	return true, ""
}

// SignValue implements dht.RecordValidator.
func (c *Composite) SignValue(r dht.Record) []byte {
	for _, v := range c.snapshot() {
		r.Value = v.SignValue(r)
	}
	return r.Value
}

// StripValue implements dht.RecordValidator.
func (c *Composite) StripValue(r dht.Record) []byte {
	list := c.snapshot()
	for i := len(list) - 1; i >= 0; i-- {
		r.Value = list[i].StripValue(r)
	}
	return r.Value
}

// Priority implements dht.RecordValidator: 0, like any hivemind validator that does not set one.
func (c *Composite) Priority() int { return 0 }

// MergeWith implements dht.RecordValidator: a Composite absorbs nothing (as in hivemind); put
// validators into it with Extend.
func (c *Composite) MergeWith(dht.RecordValidator) bool { return false }
