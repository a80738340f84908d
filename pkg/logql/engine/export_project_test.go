package engine

// WithoutProjection has e's parsers extract every label, with no prefilter
// and no projection: benchmarks compare both.
func WithoutProjection(e *Engine) *Engine {
	e.noProject = true
	return e
}
