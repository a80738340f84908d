package lokiapi

import (
	"bytes"
	"strconv"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
)

// The bodies below are bare objects, not wrapped in {"status":…,"data":…}:
// Loki answers index/stats, detected_fields, detected_field/<name>/values
// and detected_labels that way. index/volume and index/volume_range answer
// with an engine.Result, encoded by Marshal.

// MarshalIndexStats returns Loki's /loki/api/v1/index/stats body:
// {"streams":…,"chunks":…,"bytes":…,"entries":…}.
func MarshalIndexStats(s engine.IndexStats) []byte {
	var b bytes.Buffer
	b.WriteString(`{"streams":`)
	writeUint(&b, s.Streams)
	b.WriteString(`,"chunks":`)
	writeUint(&b, s.Chunks)
	b.WriteString(`,"bytes":`)
	writeUint(&b, s.Bytes)
	b.WriteString(`,"entries":`)
	writeUint(&b, s.Entries)
	b.WriteByte('}')
	return b.Bytes()
}

// MarshalDetectedFields returns Loki's /loki/api/v1/detected_fields body:
// {"fields":[{"label":…,"type":…,"cardinality":…,"parsers":[…]}],"limit":…}.
// A field no parser produced has "parsers":null, as in Loki.
func MarshalDetectedFields(fs []engine.DetectedField, limit int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"fields":`)
	writeArray(&b, fs, func(b *bytes.Buffer, f engine.DetectedField) {
		b.WriteString(`{"label":`)
		writeString(b, f.Label)
		b.WriteString(`,"type":`)
		writeString(b, f.Type)
		b.WriteString(`,"cardinality":`)
		writeUint(b, f.Cardinality)
		b.WriteString(`,"parsers":`)
		if f.Parsers == nil {
			b.WriteString("null")
		} else {
			writeArray(b, f.Parsers, writeString)
		}
		b.WriteByte('}')
	})
	b.WriteString(`,"limit":`)
	b.WriteString(strconv.Itoa(limit))
	b.WriteByte('}')
	return b.Bytes()
}

// MarshalDetectedFieldValues returns Loki's
// /loki/api/v1/detected_field/<name>/values body: {"values":[…],"limit":…}.
func MarshalDetectedFieldValues(vs []string, limit int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"values":`)
	writeArray(&b, vs, writeString)
	b.WriteString(`,"limit":`)
	b.WriteString(strconv.Itoa(limit))
	b.WriteByte('}')
	return b.Bytes()
}

// MarshalDetectedLabels returns Loki's /loki/api/v1/detected_labels body:
// {"detectedLabels":[{"label":…,"cardinality":…}]}.
func MarshalDetectedLabels(ls []engine.DetectedLabel) []byte {
	var b bytes.Buffer
	b.WriteString(`{"detectedLabels":`)
	writeArray(&b, ls, func(b *bytes.Buffer, l engine.DetectedLabel) {
		b.WriteString(`{"label":`)
		writeString(b, l.Label)
		b.WriteString(`,"cardinality":`)
		writeUint(b, l.Cardinality)
		b.WriteByte('}')
	})
	b.WriteByte('}')
	return b.Bytes()
}

func writeUint(b *bytes.Buffer, n uint64) {
	b.WriteString(strconv.FormatUint(n, 10))
}

// writeArray writes a JSON array of items, each written by write; a nil
// slice is an empty array.
func writeArray[T any](b *bytes.Buffer, items []T, write func(*bytes.Buffer, T)) {
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		write(b, it)
	}
	b.WriteByte(']')
}
