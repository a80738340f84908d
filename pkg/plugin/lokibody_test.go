package plugin

// The shapes tests decode Loki's bare index/stats and detected_fields
// bodies into (the engine computes them, lokiapi encodes them).

type indexStats struct {
	Streams int   `json:"streams"`
	Chunks  int   `json:"chunks"`
	Bytes   int64 `json:"bytes"`
	Entries int64 `json:"entries"`
}

type detectedField struct {
	Label       string   `json:"label"`
	Type        string   `json:"type"`
	Cardinality int      `json:"cardinality"`
	Parsers     []string `json:"parsers"`
}

type detectedFields struct {
	Fields []detectedField `json:"fields"`
	Limit  int             `json:"limit"`
}
