package worker

import (
	"encoding/json"
	"fmt"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/validator"
)

// newSchemaValidator builds a schema validator from the JSON form of validator.SchemaConfig.
func newSchemaValidator(configJSON []byte) (dht.RecordValidator, error) {
	var cfg validator.SchemaConfig
	if err := json.Unmarshal(configJSON, &cfg); err != nil {
		return nil, fmt.Errorf("schema config: %w", err)
	}
	return validator.NewSchema(cfg)
}
