package main

import (
	"fmt"

	"github.com/dockhand-ci/dockhand/builder"
)

// remapBench reports what a fleet change costs in cold caches: the fraction
// of 1,000 pipeline slugs whose builder changes when one node of N joins
// or leaves (rendezvous hashing, as the remote pool routes), against the
// 1/N that is the least any routing can move.
func remapBench() {
	slugs := make([]string, 1000)
	for i := range slugs {
		slugs[i] = fmt.Sprintf("team-%d-service-%d", i%37, i)
	}
	fmt.Printf("\n| fleet change (1,000 pipeline slugs) | pipelines moved | 1/N |\n|---|---|---|\n")
	for _, n := range []int{3, 5, 10, 20, 50} {
		nodes := make([]string, n+1)
		for i := range nodes {
			nodes[i] = fmt.Sprintf("tcp://10.0.%d.%d:1234", i/200, 10+i%200)
		}
		join := builder.Moved(slugs, nodes[:n], nodes)
		leave := builder.Moved(slugs, nodes[:n], nodes[1:n])
		fmt.Printf("| one node joins %d (N=%d) | %.1f%% | %.1f%% |\n", n, n+1, join*100, 100/float64(n+1))
		fmt.Printf("| one node of %d leaves (N=%d) | %.1f%% | %.1f%% |\n", n, n, leave*100, 100/float64(n))
	}
}
