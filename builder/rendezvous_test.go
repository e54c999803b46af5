package builder

import (
	"fmt"
	"math"
	"testing"
)

// slugsN are n pipeline slugs shaped like real ones.
func slugsN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("team-%d-service-%d", i%37, i)
	}
	return out
}

// fleetNodes are n builder endpoints as an Auto Scaling group's private
// addresses would be.
func fleetNodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("tcp://10.0.%d.%d:1234", i/200, 10+i%200)
	}
	return out
}

// TestOneNodeJoiningOrLeavingMovesAboutOneNth: over 1,000 pipeline slugs,
// one node of N joining or leaving moves about 1/N of the pipelines, and
// never one whose node is unaffected (only to the joiner, or off the
// leaver).
func TestOneNodeJoiningOrLeavingMovesAboutOneNth(t *testing.T) {
	slugs := slugsN(1000)
	for _, n := range []int{3, 5, 10, 20, 50} {
		nodes := fleetNodes(n + 1)
		before, joined := nodes[:n], nodes
		left := nodes[1:n] // node 0 leaves
		want := 1 / float64(n)
		for _, c := range []struct {
			what          string
			before, after []string
			exp           float64
		}{
			{"join", before, joined, 1 / float64(n+1)},
			{"leave", before, left, want},
		} {
			f := Moved(slugs, c.before, c.after)
			// 1,000 draws of probability p: 4 standard deviations.
			tol := 4 * math.Sqrt(c.exp*(1-c.exp)/1000)
			if math.Abs(f-c.exp) > tol {
				t.Errorf("N=%d %s: %.3f of pipelines moved, want %.3f ± %.3f", n, c.what, f, c.exp, tol)
			}
			for _, s := range slugs {
				b, a := Rendezvous(s, c.before)[0], Rendezvous(s, c.after)[0]
				if b != a && a != nodes[n] && b != nodes[0] {
					t.Fatalf("N=%d %s: %s moved from %s to %s, neither the joiner nor the leaver", n, c.what, s, b, a)
				}
			}
		}
	}
}
