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
	b.WriteString(`{"fields":[`)
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"label":`)
		writeString(&b, f.Label)
		b.WriteString(`,"type":`)
		writeString(&b, f.Type)
		b.WriteString(`,"cardinality":`)
		writeUint(&b, f.Cardinality)
		b.WriteString(`,"parsers":`)
		writeStrings(&b, f.Parsers, "null")
		b.WriteByte('}')
	}
	b.WriteString(`],"limit":`)
	b.WriteString(strconv.Itoa(limit))
	b.WriteByte('}')
	return b.Bytes()
}

// MarshalDetectedFieldValues returns Loki's
// /loki/api/v1/detected_field/<name>/values body: {"values":[…],"limit":…}.
func MarshalDetectedFieldValues(vs []string, limit int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"values":`)
	writeStrings(&b, vs, "[]")
	b.WriteString(`,"limit":`)
	b.WriteString(strconv.Itoa(limit))
	b.WriteByte('}')
	return b.Bytes()
}

// MarshalDetectedLabels returns Loki's /loki/api/v1/detected_labels body:
// {"detectedLabels":[{"label":…,"cardinality":…}]}.
func MarshalDetectedLabels(ls []engine.DetectedLabel) []byte {
	var b bytes.Buffer
	b.WriteString(`{"detectedLabels":[`)
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"label":`)
		writeString(&b, l.Label)
		b.WriteString(`,"cardinality":`)
		writeUint(&b, l.Cardinality)
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.Bytes()
}

func writeUint(b *bytes.Buffer, n uint64) {
	b.WriteString(strconv.FormatUint(n, 10))
}

// writeStrings writes a JSON array of strings, or none for a nil slice.
func writeStrings(b *bytes.Buffer, ss []string, none string) {
	if ss == nil {
		b.WriteString(none)
		return
	}
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(b, s)
	}
	b.WriteByte(']')
}
