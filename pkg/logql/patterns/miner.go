package patterns

import (
	"container/list"
	"strconv"
	"strings"
)

// Placeholder stands for the tokens a pattern does not fix, as Loki's
// pattern ingester writes it.
const Placeholder = "<_>"

// treeAny is the tree's key for a token that cannot be a branch: one with a
// digit (a likely variable) or one past a node's MaxChildren.
const treeAny = "\x00*"

// minerOptions are the knobs of the clustering (see Options).
type minerOptions struct {
	depth       int     // tokens of a line that choose its leaf
	maxChildren int     // branches per tree node before treeAny takes the rest
	maxClusters int     // clusters kept; the least recently used is dropped past it
	maxTokens   int     // tokens of a line considered; the rest is one placeholder
	maxBytes    int     // bytes of a line tokenized; the rest is one placeholder
	similarity  float64 // share of equal tokens a line needs to join a cluster
}

// cluster is one pattern: a template of tokens (a token is literal, the
// Placeholder, or "key=<_>" when only a key=value's value varies) and its
// counts per time bucket.
type cluster struct {
	level   string
	tokens  []string
	samples map[int64]int64 // bucket start (unix s) -> lines
	total   int64
	leaf    *node
	lru     *list.Element
}

// node is a node of the prefix tree: the root's children are keyed by token
// count, deeper ones by a token of the line; a leaf holds clusters.
type node struct {
	children map[string]*node
	clusters []*cluster
}

// miner clusters lines with a fixed-depth prefix tree in the manner of
// Drain (He et al., ICWS 2017): lines of the same length and the same first
// few tokens share a leaf, and a line joins the leaf's most similar cluster
// when enough of its tokens are equal, turning the tokens that differ into
// placeholders; otherwise it starts a cluster. Memory is bounded by
// maxClusters (least recently used dropped first) and by maxTokens.
type miner struct {
	o        minerOptions
	root     *node
	lru      *list.List // of *cluster, most recently used first
	evicted  int64      // clusters dropped for the cap
	tokenBuf []string
}

func newMiner(o minerOptions) *miner {
	return &miner{o: o, root: &node{children: map[string]*node{}}, lru: list.New()}
}

// add files a line of a level seen in time bucket b (unix s). Lines of
// different levels never share a cluster, as Loki keeps a pattern per level.
func (m *miner) add(level, line string, b int64) {
	toks := m.tokenize(line)
	if len(toks) == 0 {
		return
	}
	leaf := m.leafFor(level, toks)
	c := m.best(leaf, toks)
	if c == nil {
		c = &cluster{level: level, tokens: append([]string(nil), toks...), samples: map[int64]int64{}, leaf: leaf}
		for i, t := range c.tokens {
			c.tokens[i] = strings.Clone(t)
		}
		leaf.clusters = append(leaf.clusters, c)
		c.lru = m.lru.PushFront(c)
		if m.lru.Len() > m.o.maxClusters {
			m.evict(m.lru.Back().Value.(*cluster))
		}
	} else {
		merge(c.tokens, toks)
		m.lru.MoveToFront(c.lru)
	}
	c.samples[b]++
	c.total++
}

func (m *miner) evict(c *cluster) {
	m.lru.Remove(c.lru)
	cs := c.leaf.clusters
	for i, x := range cs {
		if x == c {
			cs[i] = cs[len(cs)-1]
			cs[len(cs)-1] = nil
			c.leaf.clusters = cs[:len(cs)-1]
			break
		}
	}
	m.evicted++
}

// glue marks a token that follows the previous one without a space: a
// word is cut after each ',' and '{' so that a JSON object or a
// comma-separated list is many tokens, not one.
const glue = "\x01"

// tokenize splits a line into at most maxTokens tokens of its first
// maxBytes bytes: words at spaces, tabs and newlines, and words again after
// ',' and '{' (the pieces glued). What is cut off becomes one placeholder.
// The tokens alias line, except glued ones, and m.tokenBuf.
func (m *miner) tokenize(line string) []string {
	toks := m.tokenBuf[:0]
	cut := false
	if len(line) > m.o.maxBytes {
		line, cut = line[:m.o.maxBytes], true
	}
	i := 0
	for i < len(line) && !cut {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		glued := false
		for i < len(line) && !isSpace(line[i]) {
			if len(toks) == m.o.maxTokens {
				cut = true
				break
			}
			j := i
			for j < len(line) && !isSpace(line[j]) {
				c := line[j]
				j++
				if c == ',' || c == '{' {
					break
				}
			}
			t := line[i:j]
			if glued {
				t = glue + t
			}
			toks = append(toks, t)
			glued = true
			i = j
		}
	}
	if cut {
		toks = append(toks, Placeholder)
	}
	m.tokenBuf = toks
	return toks
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// leafFor walks (and grows) the tree to the leaf of a line.
func (m *miner) leafFor(level string, toks []string) *node {
	n := m.child(m.child(m.root, level, true), strconv.Itoa(len(toks)), true)
	for i := 0; i < m.o.depth && i < len(toks); i++ {
		k := toks[i]
		if hasDigit(k) || isPlaceholder(k) {
			k = treeAny
		}
		n = m.child(n, k, false)
	}
	return n
}

// child returns n's child for key k, creating it; past maxChildren a new
// token goes to the treeAny branch, except on the level and length levels
// (exact: few levels exist, and maxTokens bounds the lengths).
func (m *miner) child(n *node, k string, exact bool) *node {
	if c, ok := n.children[k]; ok {
		return c
	}
	if !exact && k != treeAny && len(n.children) >= m.o.maxChildren {
		k = treeAny
		if c, ok := n.children[k]; ok {
			return c
		}
	}
	c := &node{children: map[string]*node{}}
	n.children[strings.Clone(k)] = c
	return c
}

func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			return true
		}
	}
	return false
}

// best is the leaf's cluster most similar to the line, nil when none
// reaches the similarity threshold (see score).
func (m *miner) best(leaf *node, toks []string) *cluster {
	var best *cluster
	bestSim := -1.0
	for _, c := range leaf.clusters {
		if len(c.tokens) != len(toks) {
			continue
		}
		eq := 0.0
		for i, t := range c.tokens {
			eq += score(t, toks[i])
		}
		sim := eq / float64(len(toks))
		if sim > bestSim {
			best, bestSim = c, sim
		}
	}
	if best == nil || bestSim < m.o.similarity {
		return nil
	}
	return best
}

// shape cuts a token into its glue mark, its key (through the '=' or ':'
// of key=value or key:value, where the key is not a number such as the 14
// of 14:30:52), its value and a trailing comma.
func shape(t string) (g, key, val, tail string) {
	if rest, ok := strings.CutPrefix(t, glue); ok {
		g, t = glue, rest
	}
	if len(t) > 1 && t[len(t)-1] == ',' {
		t, tail = t[:len(t)-1], ","
	}
	if i := strings.IndexAny(t, "=:"); i > 0 && strings.IndexFunc(t[:i], notDigit) >= 0 {
		key, t = t[:i+1], t[i+1:]
	}
	return g, key, t, tail
}

func notDigit(r rune) bool { return r < '0' || r > '9' }

// fits reports whether line token tok fits template token t: equal, or t
// is a placeholder (or key=<_>) where tok has the same key and comma.
func fits(t, tok string) bool {
	if t == tok {
		return true
	}
	g, k, v, tail := shape(t)
	if v != Placeholder {
		return false
	}
	g2, k2, _, tail2 := shape(tok)
	return k == k2 && tail == tail2 && (g == g2 || k == "")
}

// score is how much line token tok counts towards a line's similarity to
// template token t: 1 when equal, half when it only fills a placeholder or
// shares t's key (key=value lines of one shape have the same keys), else 0.
// The half keeps a line whose values all differ with its kind, and makes
// a literal template more similar than a generalised one.
func score(t, tok string) float64 {
	if t == tok {
		return 1
	}
	if fits(t, tok) {
		return 0.5
	}
	if _, k, _, _ := shape(t); k != "" {
		if _, k2, _, _ := shape(tok); k == k2 {
			return 0.5
		}
	}
	return 0
}

func isPlaceholder(t string) bool {
	return t == Placeholder || t == glue+Placeholder
}

// merge generalises template t by line tokens toks (same length): a token
// that differs becomes the Placeholder, keeping the key of key=value (or
// key:value) and a trailing comma when both tokens have them; a glued token
// stays glued.
func merge(t, toks []string) {
	for i, x := range t {
		y := toks[i]
		if fits(x, y) {
			continue
		}
		g, k, _, tail := shape(x)
		_, k2, _, tail2 := shape(y)
		if k != k2 {
			k = ""
		}
		if tail != tail2 {
			tail = ""
		}
		t[i] = g + k + Placeholder + tail
	}
}

// pattern renders a template: tokens joined by spaces (glued ones without),
// runs of placeholders folded into one. ok is false for a pattern with
// nothing literal.
func pattern(toks []string) (p string, ok bool) {
	var b strings.Builder
	prevPH := false
	for _, t := range toks {
		ph := isPlaceholder(t)
		if ph && prevPH {
			continue
		}
		if !ph {
			ok = true
		}
		bare, glued := strings.CutPrefix(t, glue)
		if b.Len() > 0 && !glued {
			b.WriteByte(' ')
		}
		b.WriteString(bare)
		prevPH = ph
	}
	return b.String(), ok
}
