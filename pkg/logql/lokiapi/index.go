package lokiapi

import (
	"bytes"
	"encoding/json"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
)

// The bodies below are bare objects, not wrapped in {"status":…,"data":…}:
// Loki answers index/stats, detected_fields, detected_field/<name>/values
// and detected_labels that way. index/volume and index/volume_range answer
// with an engine.Result, encoded by Marshal. Field order follows Loki's.

// IndexStatsBody is the body of index/stats; clients and tests decode into it.
type IndexStatsBody struct {
	Streams uint64 `json:"streams"`
	Chunks  uint64 `json:"chunks"`
	Bytes   uint64 `json:"bytes"`
	Entries uint64 `json:"entries"`
}

// MarshalIndexStats returns Loki's /loki/api/v1/index/stats body:
// {"streams":…,"chunks":…,"bytes":…,"entries":…}.
func MarshalIndexStats(s engine.IndexStats) []byte {
	return encode(IndexStatsBody{Streams: s.Streams, Chunks: s.Chunks, Bytes: s.Bytes, Entries: s.Entries})
}

// DetectedFieldBody is one field of a detected_fields body.
type DetectedFieldBody struct {
	Label       string   `json:"label"`
	Type        string   `json:"type"`
	Cardinality uint64   `json:"cardinality"`
	Parsers     []string `json:"parsers"`
}

// DetectedFieldsBody is the body of detected_fields.
type DetectedFieldsBody struct {
	Fields []DetectedFieldBody `json:"fields"`
	Limit  int                 `json:"limit"`
}

// MarshalDetectedFields returns Loki's /loki/api/v1/detected_fields body:
// {"fields":[{"label":…,"type":…,"cardinality":…,"parsers":[…]}],"limit":…}.
// A field no parser produced has "parsers":null, as in Loki.
func MarshalDetectedFields(fs []engine.DetectedField, limit int) []byte {
	body := DetectedFieldsBody{Fields: make([]DetectedFieldBody, len(fs)), Limit: limit}
	for i, f := range fs {
		body.Fields[i] = DetectedFieldBody(f)
	}
	return encode(body)
}

type detectedFieldValuesBody struct {
	Values []string `json:"values"`
	Limit  int      `json:"limit"`
}

// MarshalDetectedFieldValues returns Loki's
// /loki/api/v1/detected_field/<name>/values body: {"values":[…],"limit":…}.
func MarshalDetectedFieldValues(vs []string, limit int) []byte {
	if vs == nil {
		vs = []string{}
	}
	return encode(detectedFieldValuesBody{Values: vs, Limit: limit})
}

type detectedLabelBody struct {
	Label       string `json:"label"`
	Cardinality uint64 `json:"cardinality"`
}

type detectedLabelsBody struct {
	DetectedLabels []detectedLabelBody `json:"detectedLabels"`
}

// MarshalDetectedLabels returns Loki's /loki/api/v1/detected_labels body:
// {"detectedLabels":[{"label":…,"cardinality":…}]}.
func MarshalDetectedLabels(ls []engine.DetectedLabel) []byte {
	body := detectedLabelsBody{DetectedLabels: make([]detectedLabelBody, len(ls))}
	for i, l := range ls {
		body.DetectedLabels[i] = detectedLabelBody(l)
	}
	return encode(body)
}

// encode marshals a body as Loki does: <, > and & unescaped. The bodies
// above hold only strings and numbers, so encoding cannot fail.
func encode(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
