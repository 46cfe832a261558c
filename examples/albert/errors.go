package albert

import "errors"

// Sentinel errors of package albert.
var (
	// ErrInvalidConfig: a configuration failed validation; the message names the field.
	ErrInvalidConfig = errors.New("albert: invalid config")
	// ErrBadRecord: a DHT value does not have the shape of the record it should hold (a
	// LocalMetrics or LocalProgress map with strictly typed fields).
	ErrBadRecord = errors.New("albert: bad record")
)
