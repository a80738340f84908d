package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

func TestParseQuery(t *testing.T) {
	from := time.Date(2024, 12, 17, 12, 0, 0, 0, time.UTC)
	tr := backend.TimeRange{From: from, To: from.Add(time.Hour)}
	tests := []struct {
		name     string
		json     string
		interval time.Duration
		want     lokalQuery
		wantErr  string
	}{
		{
			name:     "defaults",
			json:     `{"expr":"{job=\"cosyvoice3\"} |= \"error\""}`,
			interval: 15 * time.Second,
			want:     lokalQuery{Expr: `{job="cosyvoice3"} |= "error"`, Type: QueryTypeRange, Step: 15 * time.Second, Limit: 1000, Backward: true},
		},
		{
			name:     "interval variables",
			json:     `{"expr":"rate({job=\"a\"}[$__interval]) / $__interval_ms","queryType":"range"}`,
			interval: 30 * time.Second,
			want:     lokalQuery{Expr: `rate({job="a"}[30s]) / 30000`, Type: QueryTypeRange, Step: 30 * time.Second, Limit: 1000, Backward: true},
		},
		{
			name:     "range variables",
			json:     `{"expr":"count_over_time({job=\"a\"}[$__range]) + $__range_s + $__range_ms"}`,
			interval: time.Minute,
			want:     lokalQuery{Expr: `count_over_time({job="a"}[3600s]) + 3600 + 3600000`, Type: QueryTypeRange, Step: time.Minute, Limit: 1000, Backward: true},
		},
		{
			name:     "auto is the step of a range query",
			json:     `{"expr":"rate({job=\"a\"}[$__auto])","step":"2m"}`,
			interval: time.Minute,
			want:     lokalQuery{Expr: `rate({job="a"}[2m])`, Type: QueryTypeRange, Step: 2 * time.Minute, Limit: 1000, Backward: true},
		},
		{
			name:     "auto is the range of an instant query",
			json:     `{"expr":"count_over_time({job=\"a\"}[$__auto])","queryType":"instant"}`,
			interval: time.Minute,
			want:     lokalQuery{Expr: `count_over_time({job="a"}[1h])`, Type: QueryTypeInstant, Step: time.Minute, Limit: 1000, Backward: true},
		},
		{
			name:     "legacy instant flag",
			json:     `{"expr":"sum(rate({a=\"b\"}[1m]))","instant":true}`,
			interval: time.Minute,
			want:     lokalQuery{Expr: `sum(rate({a="b"}[1m]))`, Type: QueryTypeInstant, Step: time.Minute, Limit: 1000, Backward: true},
		},
		{
			name:     "resolution multiplies the step",
			json:     `{"expr":"rate({a=\"b\"}[1m])","resolution":2}`,
			interval: 10 * time.Second,
			want:     lokalQuery{Expr: `rate({a="b"}[1m])`, Type: QueryTypeRange, Step: 20 * time.Second, Limit: 1000, Backward: true},
		},
		{
			name:     "tiny step is raised to the point limit",
			json:     `{"expr":"rate({a=\"b\"}[1m])","step":"1ms"}`,
			interval: time.Millisecond,
			want:     lokalQuery{Expr: `rate({a="b"}[1m])`, Type: QueryTypeRange, Step: 328 * time.Millisecond, Limit: 1000, Backward: true},
		},
		{
			name:     "string maxLines, forward, stream",
			json:     `{"expr":"{a=\"b\"}","maxLines":"20","direction":"forward","queryType":"stream"}`,
			interval: time.Second,
			want:     lokalQuery{Expr: `{a="b"}`, Type: QueryTypeStream, Step: time.Second, Limit: 20, Backward: false},
		},
		{
			name:     "bare seconds step",
			json:     `{"expr":"rate({a=\"b\"}[1m])","step":"15"}`,
			interval: time.Second,
			want:     lokalQuery{Expr: `rate({a="b"}[1m])`, Type: QueryTypeRange, Step: 15 * time.Second, Limit: 1000, Backward: true},
		},
		{name: "empty expr", json: `{"expr":"  "}`, wantErr: "empty query"},
		{name: "bad JSON", json: `{"expr":`, wantErr: "query JSON"},
		{name: "bad query type", json: `{"expr":"{a=\"b\"}","queryType":"table"}`, wantErr: `queryType "table"`},
		{name: "bad direction", json: `{"expr":"{a=\"b\"}","direction":"sideways"}`, wantErr: `direction "sideways"`},
		{name: "bad maxLines", json: `{"expr":"{a=\"b\"}","maxLines":"many"}`, wantErr: "maxLines"},
		{name: "huge maxLines", json: `{"expr":"{a=\"b\"}","maxLines":1000000}`, wantErr: "above the limit"},
		{name: "bad step", json: `{"expr":"{a=\"b\"}","step":"soon"}`, wantErr: `step "soon"`},
		{name: "negative step", json: `{"expr":"{a=\"b\"}","step":"-5s"}`, wantErr: "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseQuery(backend.DataQuery{RefID: "A", JSON: []byte(tt.json), Interval: tt.interval, TimeRange: tr})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.RefID, tt.want.Start, tt.want.End = "A", tr.From, tr.To
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
