package msgpack

import "errors"

// Marshal encodes v. Placeholder until the codec lands.
func Marshal(v any) ([]byte, error) { return nil, errors.New("msgpack: not implemented") }

// Unmarshal decodes one value. Placeholder until the codec lands.
func Unmarshal(data []byte) (any, error) { return nil, errors.New("msgpack: not implemented") }
