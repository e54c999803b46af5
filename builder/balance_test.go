package builder

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// loads makes a rendezvous order of nodes a, b, c, … with the given
// active builds; -1 is a node whose load is unknown.
func loads(active ...int) []NodeLoad {
	out := make([]NodeLoad, len(active))
	for i, n := range active {
		out[i] = NodeLoad{Endpoint: string(rune('a' + i)), Active: max(n, 0), Known: n >= 0}
	}
	return out
}

func TestBoundedRoute(t *testing.T) {
	for _, tc := range []struct {
		name   string
		order  []NodeLoad
		factor int
		seeds  []uint64 // each gives want (default: seed 0)
		want   Route
	}{
		{name: "no node", order: nil, factor: 125, want: Route{}},
		{name: "idle pool: its own node", order: loads(0, 0, 0), factor: 125, want: Route{Endpoint: "a", Bound: 1}},
		{name: "affinity only ignores load", order: loads(9, 0, 0), factor: 0, want: Route{Endpoint: "a"}},
		// mean with the job (9+1)/3, ×1.25 = 4.17 → 5: a with 4 is within.
		{name: "busy but within the bound", order: loads(4, 3, 2), factor: 125, want: Route{Endpoint: "a", Bound: 5}},
		// (1+1)/3 × 1.25 → 1: a would have 2; b and c both have room 1.
		{name: "over: one of the next two, by seed", order: loads(1, 0, 0), factor: 125, seeds: []uint64{0, 2}, want: Route{Endpoint: "b", Bound: 1, Spilled: true}},
		{name: "over: the other of the next two", order: loads(1, 0, 0), factor: 125, seeds: []uint64{1, 3}, want: Route{Endpoint: "c", Bound: 1, Spilled: true}},
		// (4+1)/3 × 1 → 2: a and b full, c only.
		{name: "over: the only one within", order: loads(2, 2, 0), factor: 100, want: Route{Endpoint: "c", Bound: 2, Spilled: true}},
		// b is over, c and d within: the next two within are c and d (rooms 3, 1 of bound 3).
		{name: "over: skips the full second choice", order: loads(3, 4, 0, 2, 0), factor: 150, seeds: []uint64{0, 1, 2}, want: Route{Endpoint: "c", Bound: 3, Spilled: true}},
		{name: "over: the room decides the draw", order: loads(3, 4, 0, 2, 0), factor: 150, seeds: []uint64{3, 7}, want: Route{Endpoint: "d", Bound: 3, Spilled: true}},
		{name: "unknown load: its own node as before", order: loads(-1, 0, 0), factor: 125, want: Route{Endpoint: "a", Bound: 1}},
		// The unknown node takes no part in the mean: (2+1)/2 × 1 → 2.
		{name: "unknown load is never passed over", order: loads(2, -1, 0), factor: 100, want: Route{Endpoint: "b", Bound: 2, Spilled: true}},
		{name: "every load unknown", order: loads(-1, -1), factor: 125, want: Route{Endpoint: "a"}},
		// Only below the mean can all be over (the configuration refuses
		// it); then the least loaded, first in order on a tie.
		{name: "all over: least loaded in order", order: loads(3, 2, 2), factor: 50, want: Route{Endpoint: "b", Bound: 2, Spilled: true, Over: true}},
		{name: "all over: its own node if least", order: loads(1, 1, 1), factor: 10, want: Route{Endpoint: "a", Bound: 1, Over: true}},
		{name: "one node", order: loads(7), factor: 125, want: Route{Endpoint: "a", Bound: 10}},
	} {
		seeds := tc.seeds
		if seeds == nil {
			seeds = []uint64{0}
		}
		for _, seed := range seeds {
			if got := BoundedRoute(tc.order, tc.factor, seed); got != tc.want {
				t.Errorf("%s (seed %d): %+v, want %+v", tc.name, seed, got, tc.want)
			}
		}
	}
}

// TestBoundedRouteSpreadsABurst plays jobs of pipelines on a pool, each
// job seeing the loads the ones before it made, and checks the properties
// the routing is for.
func TestBoundedRouteSpreadsABurst(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	play := func(factor int, jobs []string) map[string]int {
		active := map[string]int{}
		for i, slug := range jobs {
			order := Rendezvous(slug, nodes)
			ls := make([]NodeLoad, len(order))
			for j, n := range order {
				ls[j] = NodeLoad{Endpoint: n, Active: active[n], Known: true}
			}
			active[BoundedRoute(ls, factor, score(fmt.Sprint("job-", i), slug)).Endpoint]++
		}
		return active
	}
	// A hot pipeline's 20 jobs: no node above ⌈1.25 × 4⌉ = 5, where pure
	// affinity puts all 20 on one.
	hot := slices.Repeat([]string{"monorepo"}, 20)
	if got := play(125, hot); slices.Max(valuesOf(got)) > 5 {
		t.Errorf("bounded: %v, want at most 5 a node", got)
	}
	if got := play(0, hot); got[Rendezvous("monorepo", nodes)[0]] != 20 {
		t.Errorf("affinity only: %v, want all 20 on the pipeline's node", got)
	}
	// Quiet pipelines, one job each at a time on an idle pool: every one on
	// its own node.
	for _, slug := range []string{"web", "api", "docs", "infra"} {
		if got := play(125, []string{slug}); got[Rendezvous(slug, nodes)[0]] != 1 {
			t.Errorf("%s alone went to %v, want its node %s", slug, got, Rendezvous(slug, nodes)[0])
		}
	}
}

// TestSimultaneousDecisionsSpread: jobs on different hosts deciding at the
// same moment see the same loads. They must not all take one node: the
// seed (each job's id) divides them between the next two in proportion to
// their room.
func TestSimultaneousDecisionsSpread(t *testing.T) {
	order := loads(1, 0, 0) // the first job's build is running on a
	got := map[string]int{}
	for i := range 600 {
		got[BoundedRoute(order, 125, score(fmt.Sprintf("job-%d", i), "monorepo")).Endpoint]++
	}
	if got["a"] != 0 || got["b"] < 200 || got["c"] < 200 {
		t.Errorf("600 simultaneous jobs: %v, want none on a and about half each on b and c", got)
	}
	// The same job decides the same way (a retried bootstrap is routed as
	// before).
	s := score("job-1", "monorepo")
	first := BoundedRoute(order, 125, s)
	if again := BoundedRoute(slices.Clone(order), 125, s); again != first {
		t.Error("one job's route changes between calls")
	}
}

func TestRouteDescribe(t *testing.T) {
	order := loads(2, -1, 0)
	r := BoundedRoute(order, 100, 0)
	want := "builds a 2, b unknown, c 0; bound 2; its node over it, spilled"
	if got := r.Describe(order); got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	if got := BoundedRoute(order, 0, 0).Describe(order); got != "" {
		t.Errorf("affinity only: Describe = %q, want nothing", got)
	}
	if got := BoundedRoute(loads(3, 2, 2), 50, 0).Describe(loads(3, 2, 2)); !strings.HasSuffix(got, "every node over it, the least loaded taken") {
		t.Errorf("all over: Describe = %q", got)
	}
}

func valuesOf(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
