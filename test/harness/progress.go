package harness

import "regexp"

var (
	runStep    = regexp.MustCompile(`(?m)^#(\d+) \[[^\]]*\] RUN (.*)$`)
	cachedStep = regexp.MustCompile(`(?m)^#(\d+) CACHED\s*$`)
	ranStep    = regexp.MustCompile(`(?m)^#(\d+) \d+\.\d+ ran-`)
)

// Steps is what BuildKit's plain progress output (--progress plain) says of
// a build's RUN steps.
type Steps struct {
	Total    int // RUN steps
	Cached   int // marked CACHED
	Executed int // that printed a line starting "ran-" (the tests' RUN steps
	// echo one first), that is, ran rather than came from a cache
}

// RunSteps reads plain progress output. A step whose result comes from an
// imported cache but must be loaded (a later step builds on it) is shown
// with its layer downloads and DONE rather than CACHED: Executed tells it
// from a step that ran.
func RunSteps(progress string) Steps {
	runs := map[string]bool{}
	for _, m := range runStep.FindAllStringSubmatch(progress, -1) {
		runs[m[1]] = true
	}
	count := func(re *regexp.Regexp) int {
		hit := map[string]bool{}
		for _, m := range re.FindAllStringSubmatch(progress, -1) {
			if runs[m[1]] {
				hit[m[1]] = true
			}
		}
		return len(hit)
	}
	return Steps{Total: len(runs), Cached: count(cachedStep), Executed: count(ranStep)}
}
