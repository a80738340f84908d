package log

import (
	"regexp"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// NewDropStage returns `| drop a, b, c="v"`: named labels are removed, and
// labels given with a matcher are removed when their value matches. It can
// remove __error__ and __error_details__.
func NewDropStage(names []string, matchers []*labels.Matcher) Stage {
	return dropStage{names: names, matchers: matchers}
}

type dropStage struct {
	names    []string
	matchers []*labels.Matcher
}

func (d dropStage) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	lbs.Del(d.names...)
	for _, m := range d.matchers {
		if v, ok := lbs.Get(m.Name); ok && m.Matches(v) {
			lbs.Del(m.Name)
		}
	}
	return line, true
}

// NewKeepStage returns `| keep a, b, c="v"`: only the named labels, and
// labels given with a matcher whose value matches, remain. __error__ and
// __error_details__ are never removed by keep.
func NewKeepStage(names []string, matchers []*labels.Matcher) Stage {
	return &keepStage{names: names, matchers: matchers}
}

type keepStage struct {
	names    []string
	matchers []*labels.Matcher
	owned    bool // a per-stream instance, which may keep scratch
	scratch  []string
}

func (k *keepStage) ForStream() Stage {
	return &keepStage{names: k.names, matchers: k.matchers, owned: true}
}

func (k *keepStage) keeps(name, value string) bool {
	if name == ErrorLabel || name == ErrorDetailsLabel {
		return true
	}
	for _, n := range k.names {
		if n == name {
			return true
		}
	}
	for _, m := range k.matchers {
		if m.Name == name && m.Matches(value) {
			return true
		}
	}
	return false
}

func (k *keepStage) Process(_ int64, line []byte, lbs *LabelsBuilder) ([]byte, bool) {
	var drop []string
	if k.owned {
		drop = k.scratch[:0]
	}
	lbs.Range(func(name, value string) {
		if !k.keeps(name, value) {
			drop = append(drop, name)
		}
	})
	lbs.Del(drop...)
	if k.owned {
		k.scratch = drop
	}
	return line, true
}

// ansiSequence is the set of escape sequences decolorize removes, the same
// language Loki strips: an ESC or CSI (U+009B) introducer, any of []()#;?,
// then either an OSC-style body ended by BEL or up to four digits per
// ;-separated parameter and one final character.
var ansiSequence = regexp.MustCompile(`(?:\x1b|\x{9b})[\[\]()#;?]*` +
	`(?:(?:[a-zA-Z0-9]*(?:;[a-zA-Z0-9]*)*)?\x07` +
	`|(?:[0-9]{1,4}(?:;[0-9]{0,4})*)?[0-9A-PRZcf-ntqry=><~])`)

// NewDecolorizeStage returns `| decolorize`: ANSI escape sequences (colours,
// cursor movement, OSC titles) are removed from the line.
func NewDecolorizeStage() Stage { return decolorizeStage{} }

type decolorizeStage struct{}

func (decolorizeStage) Process(_ int64, line []byte, _ *LabelsBuilder) ([]byte, bool) {
	if indexESC(line) < 0 {
		return line, true
	}
	return ansiSequence.ReplaceAll(line, nil), true
}

func indexESC(b []byte) int {
	for i, c := range b {
		if c == 0x1b || (c == 0xc2 && i+1 < len(b) && b[i+1] == 0x9b) {
			return i
		}
	}
	return -1
}
