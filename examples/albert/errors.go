package albert

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of package albert.
var (
	// ErrInvalidConfig: a configuration failed validation; the message names the field.
	ErrInvalidConfig = errors.New("albert: invalid config")
	// ErrBadRecord: a DHT value does not have the shape of the record it should hold (a
	// LocalMetrics or LocalProgress map with strictly typed fields).
	ErrBadRecord = errors.New("albert: bad record")

	// errNotStored: no replica accepted a record (a validator rejected it, or nobody answered).
	errNotStored = errors.New("no replica accepted the record")
)

// configErrors collects the bad fields of a configuration for its Validate method.
type configErrors []error

// bad records a bad field; the error wraps ErrInvalidConfig and names the field.
func (e *configErrors) bad(field, format string, args ...any) {
	*e = append(*e, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
}

// negative records field as bad when the duration d is negative.
func (e *configErrors) negative(field string, d time.Duration) {
	if d < 0 {
		e.bad(field, "negative (%v)", d)
	}
}

// err joins the errors collected (nil when there are none).
func (e configErrors) err() error { return errors.Join(e...) }
