package cachekey

import (
	"slices"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/config"
)

// Regression tests for the defects of issue 12 that live in the cache-key
// policy, each named for its number there.

// A branch named like a pull request's ref ("pr-12") and pull request 12
// never share a cache tag: neither reads nor writes the other's cache.
func TestDefect16_BranchPr12VsPullRequest12(t *testing.T) {
	reg := Backend{Kind: config.CacheRegistry, Repository: "reg.example/cache"}
	img := Image{Context: ".", Dockerfile: "Dockerfile"}
	pr := Identity{Pipeline: "web", Branch: "dev", DefaultBranch: "main", PullRequest: "12"}
	for _, branch := range []string{"pr-12", "PR-12", "pr-12/x"} {
		br := Identity{Pipeline: "web", Branch: branch, DefaultBranch: "main", PullRequest: "false"}
		prPlan, err := PlanFor(pr, reg, img, "")
		if err != nil {
			t.Fatal(err)
		}
		brPlan, err := PlanFor(br, reg, img, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range brPlan.FromRefs {
			if slices.Contains(prPlan.ToRefs, ref) {
				t.Errorf("branch %q reads %s, which pull request 12 writes", branch, ref)
			}
		}
		for _, ref := range brPlan.ToRefs {
			if slices.Contains(prPlan.FromRefs, ref) {
				t.Errorf("branch %q writes %s, which pull request 12 reads", branch, ref)
			}
		}
		if !strings.HasSuffix(prPlan.ToRefs[0], "-pr-12") {
			t.Errorf("pull request 12 writes %s, want its KEY-pr-12 tag", prPlan.ToRefs[0])
		}
	}
}
