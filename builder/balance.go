package builder

import (
	"fmt"
	"strings"
)

// NodeLoad is one healthy node of a pipeline's rendezvous order and the
// builds it has.
type NodeLoad struct {
	Endpoint string
	Active   int  // builds running or queued, plus this host's jobs routed since the probe
	Known    bool // false: the probe could not learn the node's load
}

// Route is where a job goes and why.
type Route struct {
	Endpoint string
	Bound    int  // the most builds a node may have with this job; 0: load played no part
	Spilled  bool // not the pipeline's first choice, which was over the bound
	Over     bool // every node was over the bound: the least loaded was taken
}

// BoundedRoute is consistent hashing with bounded loads. order is the
// healthy nodes in the pipeline's rendezvous order. The job goes to the
// first node whose load with it stays within ⌈factor/100 × mean⌉, the mean
// taken over the nodes whose load is known, counting this job. So a quiet
// pipeline keeps its node and a hot one spills, only as far as it must.
//
// Jobs of one build start on many hosts at the same moment and see the
// same loads, so when the first choice is over the bound the spill is not
// always the next node: it is one of the next two within the bound, drawn
// by seed (the job's) in proportion to the room each has under the bound.
// The pipeline's spill stays on a few nodes (whose caches warm up), and a
// burst's simultaneous decisions divide between them.
//
// A node whose load is unknown is never passed over for load (it is routed
// to as before load was counted) and does not enter the mean. When every
// node is over the bound (only possible with factor < 100), the least
// loaded in rendezvous order is taken: a job is never refused. factor <= 0
// is pure affinity: always the first.
func BoundedRoute(order []NodeLoad, factor int, seed uint64) Route {
	if len(order) == 0 {
		return Route{}
	}
	first := Route{Endpoint: order[0].Endpoint}
	if factor <= 0 {
		return first
	}
	sum, known := 0, 0
	for _, n := range order {
		if n.Known {
			sum += n.Active
			known++
		}
	}
	if known == 0 {
		return first
	}
	bound := (factor*(sum+1) + 100*known - 1) / (100 * known)
	room := func(n NodeLoad) int {
		if !n.Known {
			return 1
		}
		return bound - n.Active
	}
	first.Bound = bound
	if room(order[0]) > 0 {
		return first
	}
	var within []NodeLoad
	for _, n := range order[1:] {
		if room(n) > 0 {
			within = append(within, n)
		}
	}
	switch len(within) {
	case 0:
		least := order[0]
		for _, n := range order[1:] {
			if n.Active < least.Active {
				least = n
			}
		}
		return Route{Endpoint: least.Endpoint, Bound: bound, Spilled: least.Endpoint != order[0].Endpoint, Over: true}
	case 1:
		return Route{Endpoint: within[0].Endpoint, Bound: bound, Spilled: true}
	}
	a, b := room(within[0]), room(within[1])
	pick := within[0]
	if seed%uint64(a+b) >= uint64(a) {
		pick = within[1]
	}
	return Route{Endpoint: pick.Endpoint, Bound: bound, Spilled: true}
}

// Describe says how the route was chosen among order, for the job log:
// "" when load played no part.
func (r Route) Describe(order []NodeLoad) string {
	if r.Bound == 0 {
		return ""
	}
	loads := make([]string, len(order))
	for i, n := range order {
		if n.Known {
			loads[i] = fmt.Sprintf("%s %d", n.Endpoint, n.Active)
		} else {
			loads[i] = n.Endpoint + " unknown"
		}
	}
	s := fmt.Sprintf("builds %s; bound %d", strings.Join(loads, ", "), r.Bound)
	switch {
	case r.Over:
		s += "; every node over it, the least loaded taken"
	case r.Spilled:
		s += "; its node over it, spilled"
	}
	return s
}
