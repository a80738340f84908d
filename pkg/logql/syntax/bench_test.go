package syntax

import "testing"

// BenchmarkParseExpr measures parsing typical queries: a log query with a
// pipeline and a metric query with aggregation and vector matching.
func BenchmarkParseExpr(b *testing.B) {
	cases := map[string]string{
		"log":    `{job="cosyvoice3", filename=~".*/run.log"} |= "Generating audio" | regexp "text_len=(?P<text_len>\\d+)" | text_len > 100 | line_format "{{.text_len}}"`,
		"metric": `sum by (instance, level) (count_over_time({job="cosyvoice3"} |= "timeout" [30m])) / on (instance) group_left sum by (instance) (count_over_time({job="cosyvoice3"}[30m]))`,
	}
	for name, q := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := ParseExpr(q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
