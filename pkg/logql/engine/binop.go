package engine

import (
	"math"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

func isComparison(op string) bool {
	switch op {
	case syntax.OpTypeCmpEQ, syntax.OpTypeNEQ, syntax.OpTypeGT, syntax.OpTypeGTE, syntax.OpTypeLT, syntax.OpTypeLTE:
		return true
	}
	return false
}

func isSetOp(op string) bool {
	return op == syntax.OpTypeAnd || op == syntax.OpTypeOr || op == syntax.OpTypeUnless
}

// arith applies op; for comparisons it returns lhs and whether it holds.
func arith(op string, l, r float64) (float64, bool) {
	switch op {
	case syntax.OpTypeAdd:
		return l + r, true
	case syntax.OpTypeSub:
		return l - r, true
	case syntax.OpTypeMul:
		return l * r, true
	case syntax.OpTypeDiv, syntax.OpTypeMod, syntax.OpTypePow:
		// Loki guards division and modulo by zero with NaN (not PromQL's
		// ±Inf); one function keeps vector and literal paths in step.
		return syntax.ScalarBinOp(op, l, r), true
	case syntax.OpTypeCmpEQ:
		return l, l == r
	case syntax.OpTypeNEQ:
		return l, l != r
	case syntax.OpTypeGT:
		return l, l > r
	case syntax.OpTypeGTE:
		return l, l >= r
	case syntax.OpTypeLT:
		return l, l < r
	case syntax.OpTypeLTE:
		return l, l <= r
	}
	return math.NaN(), false
}

func (ev *evaluator) binOp(x *syntax.BinOpExpr) (*value, error) {
	lhs, err := ev.eval(x.LHS)
	if err != nil {
		return nil, err
	}
	rhs, err := ev.eval(x.RHS)
	if err != nil {
		return nil, err
	}
	returnBool := x.Opts != nil && x.Opts.ReturnBool
	var vm *syntax.VectorMatching
	if x.Opts != nil {
		vm = x.Opts.VectorMatching
	}
	if vm == nil {
		vm = &syntax.VectorMatching{}
	}
	cmp := isComparison(x.Op)
	switch {
	case lhs.isScalar && rhs.isScalar:
		if isSetOp(x.Op) {
			return nil, queryErr(ErrBadQuery, "set operator %q not allowed in binary scalar expression", x.Op)
		}
		v, keep := arith(x.Op, lhs.scalar, rhs.scalar)
		if cmp {
			if !returnBool {
				return nil, queryErr(ErrBadQuery, "comparisons between scalars must use BOOL modifier")
			}
			v = b2f(keep)
		}
		return &value{isScalar: true, scalar: v}, nil
	case lhs.isScalar || rhs.isScalar:
		if isSetOp(x.Op) {
			return nil, queryErr(ErrBadQuery, "set operator %q not allowed in binary scalar expression", x.Op)
		}
		vec, sc, swap := lhs, rhs.scalar, false
		if lhs.isScalar {
			vec, sc, swap = rhs, lhs.scalar, true
		}
		out := &value{}
		pos := make([]int, len(vec.series)) // input series → output index, or -1
		for j, s := range vec.series {
			pos[j] = -1
			o := newStepSeries(s.ls, len(s.v))
			for i, ok := range s.ok {
				if !ok {
					continue
				}
				l, r := s.v[i], sc
				if swap {
					l, r = r, l
				}
				v, keep := arith(x.Op, l, r)
				if cmp && swap {
					v = s.v[i]
				}
				if returnBool {
					v, keep = b2f(keep), true
				}
				if keep {
					o.v[i], o.ok[i] = v, true
				}
			}
			if o.any() {
				pos[j] = len(out.series)
				out.series = append(out.series, o)
			}
		}
		// Loki leaves a result unsorted when sort or sort_desc appears
		// anywhere in the query, and a vector-scalar operation walks its
		// vector in order: sort_desc(x) * 2 stays sorted.
		if vec.sortOrder != nil {
			out.sortOrder = []int{}
			for _, j := range vec.sortOrder {
				if pos[j] >= 0 {
					out.sortOrder = append(out.sortOrder, pos[j])
				}
			}
		}
		return out, nil
	}
	if isSetOp(x.Op) {
		return ev.setOp(x.Op, lhs, rhs, vm), nil
	}
	return ev.vectorBinOp(x.Op, lhs, rhs, vm, returnBool)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// signature is the part of a label set that vector matching compares.
func signature(ls labels.Labels, vm *syntax.VectorMatching) string {
	if vm.On {
		return ls.Keep(vm.MatchingLabels...).String()
	}
	return ls.Drop(append([]string{"__name__"}, vm.MatchingLabels...)...).String()
}

func (ev *evaluator) setOp(op string, lhs, rhs *value, vm *syntax.VectorMatching) *value {
	n := len(ev.steps)
	rsig := map[string][]*stepSeries{}
	for _, s := range rhs.series {
		k := signature(s.ls, vm)
		rsig[k] = append(rsig[k], s)
	}
	present := func(ss []*stepSeries, i int) bool {
		for _, s := range ss {
			if s.ok[i] {
				return true
			}
		}
		return false
	}
	out := &value{}
	switch op {
	case syntax.OpTypeAnd, syntax.OpTypeUnless:
		for _, s := range lhs.series {
			o := newStepSeries(s.ls, n)
			rs := rsig[signature(s.ls, vm)]
			for i, ok := range s.ok {
				if ok && present(rs, i) == (op == syntax.OpTypeAnd) {
					o.v[i], o.ok[i] = s.v[i], true
				}
			}
			if o.any() {
				out.series = append(out.series, o)
			}
		}
	case syntax.OpTypeOr:
		lsig := map[string][]*stepSeries{}
		for _, s := range lhs.series {
			k := signature(s.ls, vm)
			lsig[k] = append(lsig[k], s)
			out.series = append(out.series, s)
		}
		for _, s := range rhs.series {
			o := newStepSeries(s.ls, n)
			ls := lsig[signature(s.ls, vm)]
			for i, ok := range s.ok {
				if ok && !present(ls, i) {
					o.v[i], o.ok[i] = s.v[i], true
				}
			}
			if o.any() {
				out.series = append(out.series, o)
			}
		}
		out.series = mergeSameLabels(out.series)
	}
	return out
}

// vectorBinOp matches series of both sides by signature at each step, as
// Prometheus and Loki do, with group_left/group_right for many-to-one.
func (ev *evaluator) vectorBinOp(op string, lhs, rhs *value, vm *syntax.VectorMatching, returnBool bool) (*value, error) {
	n := len(ev.steps)
	many, one := lhs, rhs
	if vm.Card == syntax.CardOneToMany {
		many, one = rhs, lhs
	}
	oneBySig := map[string][]*stepSeries{}
	for _, s := range one.series {
		k := signature(s.ls, vm)
		oneBySig[k] = append(oneBySig[k], s)
	}
	type outKey struct {
		ls labels.Labels
		s  *stepSeries
	}
	results := map[uint64][]*outKey{}
	var order []*stepSeries
	manySeen := map[string][]int{} // one-to-one: how many many-side series matched per step
	for _, ms := range many.series {
		sig := signature(ms.ls, vm)
		cands := oneBySig[sig]
		if len(cands) == 0 {
			continue
		}
		for i, ok := range ms.ok {
			if !ok {
				continue
			}
			var os *stepSeries
			for _, c := range cands {
				if !c.ok[i] {
					continue
				}
				if os != nil {
					side := "right"
					if vm.Card == syntax.CardOneToMany {
						side = "left"
					}
					return nil, queryErr(ErrBadQuery, "found duplicate series for the match group %s on the %s hand-side of the operation: [%s, %s];many-to-many matching not allowed: matching labels must be unique on one side", sig, side, os.ls, c.ls)
				}
				os = c
			}
			if os == nil {
				continue
			}
			if vm.Card == syntax.CardOneToOne {
				cnt := manySeen[sig]
				if cnt == nil {
					cnt = make([]int, n)
					manySeen[sig] = cnt
				}
				cnt[i]++
				if cnt[i] > 1 {
					return nil, queryErr(ErrBadQuery, "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
				}
			}
			l, r := ms.v[i], os.v[i]
			if vm.Card == syntax.CardOneToMany {
				l, r = r, l
			}
			v, keep := arith(op, l, r)
			if returnBool {
				v, keep = b2f(keep), true
			}
			if !keep {
				continue
			}
			ls := resultLabels(ms.ls, os.ls, op, vm, returnBool)
			h := ls.Hash()
			var target *stepSeries
			for _, k := range results[h] {
				if labels.Equal(k.ls, ls) {
					target = k.s
				}
			}
			if target == nil {
				target = newStepSeries(ls, n)
				results[h] = append(results[h], &outKey{ls: ls, s: target})
				order = append(order, target)
			}
			if target.ok[i] {
				return nil, queryErr(ErrBadQuery, "multiple matches for labels: grouping labels must ensure unique matches")
			}
			target.v[i], target.ok[i] = v, true
		}
	}
	if err := ev.checkInner(len(order)); err != nil {
		return nil, err
	}
	return &value{series: order}, nil
}

// resultLabels follows Prometheus's resultMetric: one-to-one matching keeps
// only the on() labels (or drops the ignoring() ones) for operators that
// change the value; group_x copies the listed labels from the one side.
func resultLabels(many, one labels.Labels, op string, vm *syntax.VectorMatching, returnBool bool) labels.Labels {
	ls := many
	changes := !isComparison(op) || returnBool
	if changes {
		ls = ls.Drop("__name__")
	}
	if vm.Card == syntax.CardOneToOne {
		if vm.On {
			ls = ls.Keep(vm.MatchingLabels...)
		} else {
			ls = ls.Drop(vm.MatchingLabels...)
		}
	}
	if len(vm.Include) > 0 {
		m := ls.Map()
		for _, name := range vm.Include {
			if v := one.Get(name); v != "" {
				m[name] = v
			} else {
				delete(m, name)
			}
		}
		ls = labels.FromMap(m)
	}
	return ls
}
