package policies

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// Costs of the helpers, in CEL cost units (one unit is roughly one simple
// operation). They make the runtime cost limit and the compile-time
// estimate account for what the helpers really do.
const (
	costVersion  = 5  // parse two versions
	costPattern  = 5  // per pattern matched
	costLicense  = 50 // parse an SPDX expression and expand it
	costAllowed  = 10 // per entry of an allow list
	costConstant = 1
)

// costTrackers price the helpers at runtime as the estimator does at
// compile time, so that the cost limit accounts for what they really do.
func costTrackers() []cost.TrackerOption {
	var opts []cost.TrackerOption
	for _, id := range []string{ovSemverCompare, ovSemverValid, ovSemverPrerelease, ovGoVersionCompare,
		ovModuleMatches, ovLicensesAllowed, ovLicensesValid, ovAge, ovKnown} {
		opts = append(opts, cost.OverloadTracker(id, func(args []ref.Val, _ ref.Val) *uint64 {
			c, _ := helperCost(id, func(i int) uint64 {
				if i < len(args) {
					if s, ok := args[i].(traits.Sizer); ok {
						if n, ok := s.Size().(types.Int); ok && n > 0 {
							return uint64(n)
						}
					}
				}
				return 0
			})
			return &c
		}))
	}
	return opts
}

// helperCost is the cost of one call of a helper; size returns the size of
// its i'th argument.
func helperCost(overloadID string, size func(i int) uint64) (uint64, bool) {
	switch overloadID {
	case ovSemverCompare, ovGoVersionCompare:
		return 2 * costVersion, true
	case ovSemverValid, ovSemverPrerelease:
		return costVersion, true
	case ovModuleMatches:
		return costConstant + costPattern*size(1) + size(0)/10, true
	case ovLicensesAllowed:
		return costLicense + costAllowed*size(1), true
	case ovLicensesValid:
		return costLicense, true
	case ovAge, ovKnown:
		return costConstant, true
	}
	return 0, false
}

// estimator is the compile-time cost.Estimator: it bounds the sizes of the
// input by Limits, and prices the helpers as costTrackers do.
type estimator struct{ limits Limits }

func (e estimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if n.ComputedSize() != nil || n.Type() == nil {
		return nil
	}
	p, t := n.Path(), n.Type()
	var max int
	switch {
	case len(p) < 2 || p[0] != "input":
		// The result of a comprehension (filter, map) over the input is
		// no longer than the list it ranges over; without this CEL would
		// take it as unbounded, and refuse every filter(…).map(…).
		// Likewise a string field of an element of such a list.
		switch {
		case t.Kind() == types.ListKind:
			max = e.limits.MaxList
		case t.IsExactType(cel.StringType):
			max = e.limits.MaxString
		default:
			return nil
		}
	case t.IsExactType(cel.StringType):
		max = e.limits.MaxString
	case t.Kind() == types.ListKind && p[len(p)-1] == "licenses":
		max = e.limits.MaxLicenses
	case t.Kind() == types.ListKind:
		max = e.limits.MaxList
	default:
		return nil
	}
	sz := cost.RangedSizeEstimate(0, uint64(max))
	return &sz
}

func (e estimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	c, ok := helperCost(overloadID, func(i int) uint64 {
		if i >= len(args) {
			return 0
		}
		if sz := args[i].ComputedSize(); sz != nil {
			return sz.Max
		}
		if sz := e.EstimateSize(args[i]); sz != nil {
			return sz.Max
		}
		return uint64(e.limits.MaxList)
	})
	if !ok {
		return nil
	}
	return cost.NewCallEstimate(cost.FixedCostEstimate(c), nil)
}
