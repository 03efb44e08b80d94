// Package spell suggests the known name a misspelled one was meant to be:
// the configuration loader for FACED_* variables and the native API for
// unknown fields both answer "did you mean ...?".
package spell

import "strings"

// Distance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and adjacent transpositions each
// count one ("nmae" is one edit from "name"). It works on bytes: the
// names it compares are ASCII.
func Distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// maxLen bounds the names Nearest compares: a longer one is no
// misspelling of a field name, and the distance is quadratic.
const maxLen = 64

// Nearest is the known name closest to name (compared in lower case), if
// it is close enough to be a likely misspelling: at most a third of the
// longer name's length, and at least one edit. Ties go to the first in
// known's order; "" when none is close.
func Nearest(name string, known []string) string {
	if len(name) > maxLen {
		return ""
	}
	lower := strings.ToLower(name)
	best, bestD := "", 0
	for _, k := range known {
		d := Distance(lower, k)
		if limit := max(1, max(len(lower), len(k))/3); d > limit {
			continue
		}
		if best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	return best
}
