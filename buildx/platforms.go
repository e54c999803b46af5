package buildx

import "slices"

// HostFirst puts the node that builds the host's platform first, keeping
// the others' order: buildx builds on a builder's first node when no
// --platform is given, so `docker build -t x . && docker run x` runs on the
// host as it would on the engine's own builder. A node with no platform
// list is taken as the host's. It reports whether the order changed.
func HostFirst(nodes []Node, host string) bool {
	builds := func(n Node) bool { return len(n.Platforms) == 0 || n.Platforms[0] == host }
	i := slices.IndexFunc(nodes, builds)
	if i <= 0 {
		return false
	}
	first := nodes[i]
	copy(nodes[1:i+1], nodes[:i])
	nodes[0] = first
	return true
}
