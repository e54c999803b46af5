package builder

import (
	"hash/fnv"
	"slices"
)

// Rendezvous orders nodes by their highest-random-weight score for key: the
// first is the node key is routed to, the second where it goes when the
// first is down, and so on. Removing a node only moves the keys that were on
// it; every other key keeps its node (and its warm cache). It is pure and
// stable: the same key and nodes always give the same order, whatever order
// the nodes come in.
func Rendezvous(key string, nodes []string) []string {
	out := slices.Clone(nodes)
	scores := make(map[string]uint64, len(out))
	for _, n := range out {
		scores[n] = score(key, n)
	}
	slices.SortStableFunc(out, func(a, b string) int {
		switch sa, sb := scores[a], scores[b]; {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		case a < b: // a tie (never seen in practice): by name, for stability
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	return out
}

// score hashes key and node together (FNV-1a), then mixes the bits
// (SplitMix64's finaliser) so that similar keys spread evenly.
func score(key, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(node))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Moved is the fraction of keys whose first choice differs between the
// nodes before and after a membership change: what a fleet change costs in
// cold caches. With rendezvous hashing one node of N joining or leaving
// moves about 1/N of the keys, and only those that go to (or were on) it.
func Moved(keys, before, after []string) float64 {
	if len(keys) == 0 {
		return 0
	}
	moved := 0
	for _, k := range keys {
		if Rendezvous(k, before)[0] != Rendezvous(k, after)[0] {
			moved++
		}
	}
	return float64(moved) / float64(len(keys))
}
