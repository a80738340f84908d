package lokiapi

import (
	"bytes"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
)

// MarshalStreams returns streams as the array Loki's bodies hold under
// data.result (and tail messages under streams).
func MarshalStreams(ss []engine.Stream) []byte {
	var b bytes.Buffer
	writeStreams(&b, ss)
	return b.Bytes()
}
