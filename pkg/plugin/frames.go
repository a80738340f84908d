package plugin

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// logRow is one log line of a result, with the labels of its stream.
type logRow struct {
	Ts     int64
	Seq    uint64
	Line   string
	Labels labels.Labels
}

// point is one sample of a metric series.
type point struct {
	T int64 // Unix ms
	V float64
}

// series is one metric series.
type series struct {
	Labels labels.Labels
	Points []point
}

// queryStats are what the inspector shows for a query.
type queryStats struct {
	Lines          int
	EntriesScanned int64
	BytesScanned   int64
	Streams        int
	BlocksTotal    int
	BlocksSkipped  int
	BlocksCorrupt  int
	// CacheHits and CacheMisses count blocks whose kept result was reused,
	// or computed and kept (engine.CacheStats).
	CacheHits   int64
	CacheMisses int64
	Duration    time.Duration
}

func (s queryStats) frameStats() []data.QueryStat {
	stat := func(name, unit string, v float64) data.QueryStat {
		return data.QueryStat{FieldConfig: data.FieldConfig{DisplayName: name, Unit: unit}, Value: v}
	}
	return []data.QueryStat{
		stat("Summary: total lines processed", "", float64(s.EntriesScanned)),
		stat("Summary: total bytes processed", "decbytes", float64(s.BytesScanned)),
		stat("Summary: exec time", "s", s.Duration.Seconds()),
		stat("Store: streams", "", float64(s.Streams)),
		stat("Store: blocks in range", "", float64(s.BlocksTotal)),
		stat("Store: blocks skipped by token filters", "", float64(s.BlocksSkipped)),
		stat("Store: corrupt blocks skipped", "", float64(s.BlocksCorrupt)),
		stat("Cache: block results reused", "", float64(s.CacheHits)),
		stat("Cache: block results computed", "", float64(s.CacheMisses)),
	}
}

// logsCustom is the frame's Custom metadata for log queries.
type logsCustom struct {
	SearchWords  []string `json:"searchWords,omitempty"`
	Limit        int      `json:"limit"`
	LimitReached bool     `json:"limitReached"`
	Direction    string   `json:"direction"`
}

// logsFrame builds one frame by the data plane logs contract. Rows come in
// the order they should be shown.
func logsFrame(refID, executed string, rows []logRow, custom logsCustom, st queryStats) *data.Frame {
	ts := make([]time.Time, len(rows))
	body := make([]string, len(rows))
	sev := make([]string, len(rows))
	ids := make([]string, len(rows))
	lbls := make([]json.RawMessage, len(rows))
	// Rows of one stream share their labels: encode each set once.
	type enc struct {
		json json.RawMessage
		hash uint64
	}
	cache := map[uint64][]struct {
		ls labels.Labels
		e  enc
	}{}
	encode := func(ls labels.Labels) enc {
		k := ls.Hash()
		for _, c := range cache[k] {
			if labels.Equal(c.ls, ls) {
				return c.e
			}
		}
		b, err := json.Marshal(ls.Map())
		if err != nil { // a map of strings always marshals
			b = []byte("{}")
		}
		h := fnv.New64a()
		_, _ = h.Write([]byte(ls.String()))
		e := enc{json: b, hash: h.Sum64()}
		cache[k] = append(cache[k], struct {
			ls labels.Labels
			e  enc
		}{ls, e})
		return e
	}
	for i, r := range rows {
		e := encode(r.Labels)
		ts[i] = time.Unix(0, r.Ts).UTC()
		body[i] = r.Line
		sev[i] = severity(r.Labels)
		ids[i] = rowID(r, e.hash)
		lbls[i] = e.json
	}
	f := data.NewFrame(refID,
		data.NewField("labels", nil, lbls),
		data.NewField("timestamp", nil, ts),
		data.NewField("body", nil, body),
		data.NewField("severity", nil, sev),
		data.NewField("id", nil, ids),
	)
	f.RefID = refID
	custom.Limit = max(custom.Limit, 0)
	f.Meta = &data.FrameMeta{
		Type:                   data.FrameTypeLogLines,
		TypeVersion:            data.FrameTypeVersion{0, 0},
		PreferredVisualization: data.VisTypeLogs,
		ExecutedQueryString:    executed,
		Custom:                 custom,
		Stats:                  st.frameStats(),
	}
	return f
}

// rowID is stable across queries and processes (shortlinks keep working)
// and unique: the time, the order within the stream, and a hash of the
// stream's labels and the line.
func rowID(r logRow, labelHash uint64) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(r.Line))
	return fmt.Sprintf("%d_%d_%016x_%016x", r.Ts, r.Seq, labelHash, h.Sum64())
}

// severity reads the level the ingester (or a parser) put on the line.
func severity(ls labels.Labels) string {
	for _, name := range []string{"level", "detected_level", "severity", "lvl"} {
		if v := ls.Get(name); v != "" {
			return v
		}
	}
	return ""
}

// matrixFrames builds one timeseries-multi frame per series.
func matrixFrames(refID, executed, legend string, ss []series, st queryStats) data.Frames {
	sortSeries(ss)
	frames := make(data.Frames, 0, len(ss))
	for _, s := range ss {
		ts := make([]time.Time, len(s.Points))
		vs := make([]float64, len(s.Points))
		for i, p := range s.Points {
			ts[i] = time.UnixMilli(p.T).UTC()
			vs[i] = p.V
		}
		val := data.NewField("value", fieldLabels(s.Labels), vs)
		val.Config = &data.FieldConfig{DisplayNameFromDS: displayName(legend, s.Labels)}
		frames = append(frames, typedFrame(refID, executed, data.FrameTypeTimeSeriesMulti, data.NewField("time", nil, ts), val))
	}
	if len(frames) == 0 {
		// No series is a valid answer (Loki: a count over no lines is no
		// series); an empty typed frame keeps the type for Grafana.
		frames = append(frames, typedFrame(refID, executed, data.FrameTypeTimeSeriesMulti))
	}
	frames[0].Meta.Stats = st.frameStats()
	return frames
}

// vectorFrames builds one numeric-multi frame per series: what alerting and
// stat panels take directly. A series' single point is its value.
func vectorFrames(refID, executed, legend string, ss []series, st queryStats) data.Frames {
	sortSeries(ss)
	frames := make(data.Frames, 0, len(ss))
	for _, s := range ss {
		var v float64
		if len(s.Points) > 0 {
			v = s.Points[len(s.Points)-1].V
		}
		val := data.NewField("value", fieldLabels(s.Labels), []float64{v})
		val.Config = &data.FieldConfig{DisplayNameFromDS: displayName(legend, s.Labels)}
		frames = append(frames, typedFrame(refID, executed, data.FrameTypeNumericMulti, val))
	}
	if len(frames) == 0 {
		frames = append(frames, typedFrame(refID, executed, data.FrameTypeNumericMulti))
	}
	frames[0].Meta.Stats = st.frameStats()
	return frames
}

// typedFrame is a frame of the data plane type typ (version 0.1).
func typedFrame(refID, executed string, typ data.FrameType, fields ...*data.Field) *data.Frame {
	f := data.NewFrame(refID, fields...)
	f.RefID = refID
	f.Meta = &data.FrameMeta{Type: typ, TypeVersion: data.FrameTypeVersion{0, 1}, ExecutedQueryString: executed}
	return f
}

func sortSeries(ss []series) {
	sort.SliceStable(ss, func(i, j int) bool { return labels.Compare(ss[i].Labels, ss[j].Labels) < 0 })
}

func fieldLabels(ls labels.Labels) data.Labels {
	if len(ls) == 0 {
		return nil
	}
	return data.Labels(ls.Map())
}

// displayName applies a legend format such as "{{level}} on {{instance}}";
// without one it is the series' labels as Loki prints them.
func displayName(legend string, ls labels.Labels) string {
	if legend == "" {
		if len(ls) == 0 {
			return "value"
		}
		return ls.String()
	}
	var b strings.Builder
	for {
		i := strings.Index(legend, "{{")
		if i < 0 {
			b.WriteString(legend)
			break
		}
		j := strings.Index(legend[i:], "}}")
		if j < 0 {
			b.WriteString(legend)
			break
		}
		b.WriteString(legend[:i])
		name := strings.TrimSpace(legend[i+2 : i+j])
		name = strings.TrimPrefix(name, ".")
		b.WriteString(ls.Get(name))
		legend = legend[i+j+2:]
	}
	return b.String()
}
