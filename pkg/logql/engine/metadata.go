package engine

import (
	"slices"
	"strings"
	"unsafe"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// metadataAt is the structured metadata of entry i of b, nil for none.
func metadataAt(b *store.Batch, i int) labels.Labels {
	if b.Metadata == nil {
		return nil
	}
	return b.Metadata[i]
}

// withMetadata gives the labels of entries of one stream that a query
// without a pipeline sees: the stream's labels plus each entry's structured
// metadata, as Loki 3 does (a metadata name that is also a stream label
// takes the _extracted suffix). Entries of a block share their metadata sets, so
// the last one is remembered by identity.
type withMetadata struct {
	stream labels.Labels // without empty values
	hash   uint64

	last     *labels.Label
	lastLen  int
	lastLbls labels.Labels
	lastHash uint64
}

func newWithMetadata(stream labels.Labels) *withMetadata {
	ls := stream.WithoutEmpty()
	return &withMetadata{stream: ls, hash: ls.Hash()}
}

// labels returns the entry's labels and their hash.
func (w *withMetadata) labels(md labels.Labels) (labels.Labels, uint64) {
	if len(md) == 0 {
		return w.stream, w.hash
	}
	if p := unsafe.SliceData(md); p == w.last && len(md) == w.lastLen {
		return w.lastLbls, w.lastHash
	}
	out := make(labels.Labels, 0, len(w.stream)+len(md))
	out = append(out, w.stream...)
	for _, l := range md {
		if l.Value == "" {
			continue
		}
		if w.stream.Has(l.Name) {
			// As the pipeline does (log.LabelsBuilder.SetMetadata).
			l.Name += "_extracted"
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(x, y labels.Label) int { return strings.Compare(x.Name, y.Name) })
	w.last, w.lastLen, w.lastLbls, w.lastHash = unsafe.SliceData(md), len(md), out, out.Hash()
	return out, w.lastHash
}
