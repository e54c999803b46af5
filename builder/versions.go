package builder

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
)

// MinBuildKit is the oldest BuildKit the cache flags dockhand injects work
// on: registry cache with image-manifest=true (for ECR) came in v0.12.
const MinBuildKit = "v0.12.0"

// parseVersion reads vMAJOR.MINOR.PATCH, ignoring a pre-release or build
// suffix; ok is false for anything else, and for an unstamped build
// (v0.0.0+unknown, as `go build` of BuildKit reports), which are not judged.
func parseVersion(v string) (n [3]int, ok bool) {
	v, found := strings.CutPrefix(v, "v")
	if !found || strings.HasPrefix(v, "0.0.0") {
		return n, false
	}
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return n, false
	}
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return n, false
		}
		n[i] = x
	}
	return n, true
}

// older reports whether version a is older than b (both parseable).
func older(a, b string) bool {
	x, okA := parseVersion(a)
	y, okB := parseVersion(b)
	if !okA || !okB {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}

// VersionWarnings are what the probes say about the BuildKit versions of a
// builder's nodes: a node older than MinBuildKit, and nodes of one
// multi-node builder that run different versions (a build across them can
// behave differently per platform). results are probe results by endpoint.
func VersionWarnings(b buildx.Builder, results map[string]cloud.ProbeResult) []string {
	var w []string
	var seen []string
	versions := map[string][]string{}
	for _, n := range b.Nodes {
		r, ok := results[n.Endpoint]
		if !ok || !r.OK || r.Version == "" || r.Kind != cloud.ProbeBuildkit {
			continue
		}
		if older(r.Version, MinBuildKit) {
			w = append(w, fmt.Sprintf("builder node %s runs BuildKit %s, older than the %s dockhand's cache flags need (registry cache with image-manifest=true); upgrade it", n.Endpoint, r.Version, MinBuildKit))
		}
		if _, ok := versions[r.Version]; !ok {
			seen = append(seen, r.Version)
		}
		versions[r.Version] = append(versions[r.Version], n.Endpoint)
	}
	if len(seen) > 1 {
		var parts []string
		for _, v := range seen {
			parts = append(parts, v+" on "+strings.Join(versions[v], ", "))
		}
		w = append(w, fmt.Sprintf("the nodes of builder %s run different BuildKit versions (%s): builds across them may differ per platform", b.Name, strings.Join(parts, "; ")))
	}
	return w
}

// resultsByEndpoint indexes probe results by endpoint.
func resultsByEndpoint(rs []cloud.ProbeResult) map[string]cloud.ProbeResult {
	m := make(map[string]cloud.ProbeResult, len(rs))
	for _, r := range rs {
		m[r.Endpoint] = r
	}
	return m
}
