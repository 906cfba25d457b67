// Package house checks the house rules the whole tree keeps: no non-test
// file over 800 lines, no function over 100 lines without a reason written
// in its doc comment ("It is long because …"). Generated code is exempt.
//
// How it works: TestHouseRules walks the repository from its root (skipping
// hidden directories, node_modules and testdata), parses every non-test,
// non-generated .go file (*.pb.go are generated) and reports each file
// and each function past its limit, with the fix to make. It holds no
// code of its own; go test ./internal/house/ is the check.
package house
