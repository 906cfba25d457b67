package stripe

// Plan is plan, for the tests.
var Plan = plan

// TreeState is treeState, for the tests.
type TreeState = treeState

// State makes a TreeState.
func State(children int, attached, top bool, lent int) TreeState {
	return treeState{children: children, attached: attached, top: top, lent: lent}
}

// RedealPlan is redealPlan, for the tests.
var RedealPlan = redealPlan

// TreeVerify is treeVerify, for the tests.
var TreeVerify = treeVerify
