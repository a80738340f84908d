// Package lokiapi encodes engine results as the JSON bodies of Loki's HTTP
// API (/loki/api/v1/query_range and /loki/api/v1/query), so the CLI's
// `-o json` and the conformance tests print exactly what Loki would:
// stream values as ["<unix ns>", "<line>"], matrix and vector points as
// [<unix seconds>, "<value>"], floats in Go's shortest form with NaN and
// ±Inf spelled as Loki spells them.
package lokiapi

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
)

// Marshal returns the success body for a result.
func Marshal(r engine.Result) []byte {
	var b bytes.Buffer
	b.WriteString(`{"status":"success","data":{"resultType":`)
	writeString(&b, string(resultType(r)))
	b.WriteString(`,"result":`)
	switch r.Type {
	case engine.ValueStreams:
		writeStreams(&b, r.Streams)
	case engine.ValueMatrix:
		writeMatrix(&b, r.Matrix)
	case engine.ValueVector:
		writeVector(&b, r.Vector)
	case engine.ValueScalar:
		writePoint(&b, r.Scalar.T, r.Scalar.V)
	default:
		b.WriteString("[]")
	}
	b.WriteString(`,"stats":`)
	writeStats(&b, r)
	b.WriteString("}}")
	return b.Bytes()
}

// Write writes the success body for a result, followed by a newline.
func Write(w io.Writer, r engine.Result) error {
	body := append(Marshal(r), '\n')
	_, err := w.Write(body)
	return err
}

// MarshalError returns Loki's error body: {"status":"error","errorType":…,"error":…}.
// Every query error is bad_data except cancellations (canceled) and
// deadlines (timeout), as Prometheus-style APIs classify them.
func MarshalError(err error) []byte {
	var b bytes.Buffer
	b.WriteString(`{"status":"error","errorType":`)
	writeString(&b, ErrorType(err))
	b.WriteString(`,"error":`)
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	writeString(&b, msg)
	b.WriteString("}")
	return b.Bytes()
}

// ErrorType classifies an error as Loki's API does.
func ErrorType(err error) string {
	if err == nil {
		return "bad_data"
	}
	if isCanceled(err) {
		return "canceled"
	}
	if isTimeout(err) {
		return "timeout"
	}
	return "bad_data"
}

func resultType(r engine.Result) engine.ValueType {
	if r.Type == "" {
		return engine.ValueStreams
	}
	return r.Type
}

func writeString(b *bytes.Buffer, s string) {
	// Loki's encoder does not escape <, > and & for HTML; invalid UTF-8
	// becomes U+FFFD. Encoding a string cannot fail.
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode's newline
}

// writeArray writes xs as a JSON array, each element by write.
func writeArray[T any](b *bytes.Buffer, xs []T, write func(*bytes.Buffer, T)) {
	b.WriteByte('[')
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		write(b, x)
	}
	b.WriteByte(']')
}

func writeLabels(b *bytes.Buffer, ls labels.Labels) {
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(b, l.Name)
		b.WriteByte(':')
		writeString(b, l.Value)
	}
	b.WriteByte('}')
}

// writeSeries writes {"<key>":<labels>,"values":[...]}, the element shared
// by streams and matrices.
func writeSeries[T any](b *bytes.Buffer, key string, ls labels.Labels, values []T, write func(*bytes.Buffer, T)) {
	b.WriteString(`{"`)
	b.WriteString(key)
	b.WriteString(`":`)
	writeLabels(b, ls)
	b.WriteString(`,"values":`)
	writeArray(b, values, write)
	b.WriteByte('}')
}

func writeStreams(b *bytes.Buffer, ss []engine.Stream) {
	writeArray(b, ss, func(b *bytes.Buffer, s engine.Stream) {
		writeSeries(b, "stream", s.Labels, s.Entries, func(b *bytes.Buffer, e engine.Entry) {
			b.WriteString(`["`)
			b.WriteString(strconv.FormatInt(e.Ts, 10))
			b.WriteString(`",`)
			writeString(b, e.Line)
			b.WriteByte(']')
		})
	})
}

func writeMatrix(b *bytes.Buffer, ms []engine.Series) {
	writeArray(b, ms, func(b *bytes.Buffer, s engine.Series) {
		writeSeries(b, "metric", s.Metric, s.Points, func(b *bytes.Buffer, p engine.Point) {
			writePoint(b, p.T, p.V)
		})
	})
}

func writeVector(b *bytes.Buffer, vs []engine.Sample) {
	writeArray(b, vs, func(b *bytes.Buffer, s engine.Sample) {
		b.WriteString(`{"metric":`)
		writeLabels(b, s.Metric)
		b.WriteString(`,"value":`)
		writePoint(b, s.T, s.V)
		b.WriteByte('}')
	})
}

// writePoint writes [<unix seconds>, "<value>"]; the time keeps its
// milliseconds as a decimal fraction (1734393708.5), as Loki prints it.
func writePoint(b *bytes.Buffer, tMs int64, v float64) {
	b.WriteByte('[')
	b.WriteString(FormatTime(tMs))
	b.WriteString(`,"`)
	b.WriteString(FormatValue(v))
	b.WriteString(`"]`)
}

// FormatTime prints Unix milliseconds as Unix seconds.
func FormatTime(tMs int64) string {
	return strconv.FormatFloat(float64(tMs)/1000, 'f', -1, 64)
}

// FormatValue prints a sample value as Loki does: shortest decimal form,
// NaN, +Inf, -Inf.
func FormatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// writeStats writes a summary shaped like Loki's data.stats.summary, plus
// Lokal's own store counters under "store" (Loki's clients ignore unknown
// keys).
func writeStats(b *bytes.Buffer, r engine.Result) {
	st := r.Stats
	exec := st.ExecTime.Seconds()
	perSec := func(n int64) int64 {
		if exec <= 0 {
			return 0
		}
		return int64(float64(n) / exec)
	}
	b.WriteString(`{"summary":{`)
	b.WriteString(`"bytesProcessedPerSecond":` + strconv.FormatInt(perSec(st.Store.BytesScanned), 10))
	b.WriteString(`,"linesProcessedPerSecond":` + strconv.FormatInt(perSec(st.Store.EntriesScanned), 10))
	b.WriteString(`,"totalBytesProcessed":` + strconv.FormatInt(st.Store.BytesScanned, 10))
	b.WriteString(`,"totalLinesProcessed":` + strconv.FormatInt(st.Store.EntriesScanned, 10))
	b.WriteString(`,"execTime":` + strconv.FormatFloat(exec, 'f', -1, 64))
	b.WriteString(`,"queueTime":0`)
	b.WriteString(`,"totalEntriesReturned":` + strconv.Itoa(st.EntriesReturned))
	b.WriteString(`},"store":{`)
	b.WriteString(`"streams":` + strconv.Itoa(st.Store.Streams))
	b.WriteString(`,"blocksTotal":` + strconv.Itoa(st.Store.BlocksTotal))
	b.WriteString(`,"blocksSkipped":` + strconv.Itoa(st.Store.BlocksSkipped))
	b.WriteString(`,"blocksRead":` + strconv.Itoa(st.Store.BlocksRead))
	b.WriteString(`,"blocksCorrupt":` + strconv.Itoa(st.Store.BlocksCorrupt))
	b.WriteString(`,"entriesScanned":` + strconv.FormatInt(st.Store.EntriesScanned, 10))
	b.WriteString(`,"bytesScanned":` + strconv.FormatInt(st.Store.BytesScanned, 10))
	// Blocks whose kept result (engine.CacheStats) was reused or computed.
	b.WriteString(`,"blockResultsReused":` + strconv.FormatInt(st.Cache.Hits, 10))
	b.WriteString(`,"blockResultsComputed":` + strconv.FormatInt(st.Cache.Misses, 10))
	b.WriteString(`,"limitReached":` + strconv.FormatBool(r.LimitReached))
	b.WriteString("}}")
}
