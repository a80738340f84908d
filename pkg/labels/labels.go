// Package labels holds label sets and label matchers: the vocabulary shared by
// the store's index, the LogQL engine and the ingester.
package labels

import (
	"hash/maphash"
	"sort"
	"strconv"
	"strings"
)

// Label is one name/value pair.
type Label struct {
	Name, Value string
}

// Labels is a label set sorted by name with unique names. Treat it as
// immutable: functions that change a set return a new one.
type Labels []Label

// New builds a sorted set from pairs; a later duplicate name wins.
func New(ls ...Label) Labels {
	out := make(Labels, 0, len(ls))
	out = append(out, ls...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	// keep the last of equal names
	w := 0
	for i := range out {
		if w > 0 && out[w-1].Name == out[i].Name {
			out[w-1] = out[i]
			continue
		}
		out[w] = out[i]
		w++
	}
	return out[:w]
}

// FromMap builds a set from a map.
func FromMap(m map[string]string) Labels {
	out := make(Labels, 0, len(m))
	for k, v := range m {
		out = append(out, Label{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FromStrings builds a set from name, value, name, value, ...
func FromStrings(kv ...string) Labels {
	ls := make([]Label, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, Label{kv[i], kv[i+1]})
	}
	return New(ls...)
}

// Map returns the set as a map.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

// Get returns the value of name, or "" when absent.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Has reports whether name is present.
func (ls Labels) Has(name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

// String prints the set the way Loki does: {a="b", c="d"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// Equal reports whether two sets hold the same pairs.
func Equal(a, b Labels) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Compare orders sets lexicographically by (name, value) pairs.
func Compare(a, b Labels) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Name, b[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

var hashSeed = maphash.MakeSeed()

// Hash is a process-local hash of the set, for map keys and grouping. It is
// not stable across processes: never persist it.
func (ls Labels) Hash() uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed)
	for _, l := range ls {
		h.WriteString(l.Name)
		h.WriteByte(0xff)
		h.WriteString(l.Value)
		h.WriteByte(0xfe)
	}
	return h.Sum64()
}

// WithoutEmpty drops pairs whose value is empty (Loki never keeps those).
func (ls Labels) WithoutEmpty() Labels {
	for _, l := range ls {
		if l.Value == "" {
			out := make(Labels, 0, len(ls))
			for _, l := range ls {
				if l.Value != "" {
					out = append(out, l)
				}
			}
			return out
		}
	}
	return ls
}

// Keep returns the pairs whose names are listed.
func (ls Labels) Keep(names ...string) Labels {
	out := make(Labels, 0, len(names))
	for _, l := range ls {
		for _, n := range names {
			if l.Name == n {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// Drop returns the pairs whose names are not listed.
func (ls Labels) Drop(names ...string) Labels {
	out := make(Labels, 0, len(ls))
outer:
	for _, l := range ls {
		for _, n := range names {
			if l.Name == n {
				continue outer
			}
		}
		out = append(out, l)
	}
	return out
}
