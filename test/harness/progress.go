package harness

import (
	"regexp"
	"strconv"
	"strings"
)

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

// contextDone is BuildKit's final line of one context upload in plain
// progress output, for example "#4 transferring context: 52.43MB 0.6s done"
// (sizes in go-units' decimal units; no time when it took under 0.05s), and
// vertexName the line that names a step ("#4 [internal] load build context").
var (
	contextDone = regexp.MustCompile(`^#(\d+) transferring context: ([0-9.]+)(B|kB|MB|GB|TB) ?(?:([0-9.]+)s )?done\s*$`)
	vertexName  = regexp.MustCompile(`^#(\d+) (\[.*)$`)
)

// Transfer is one build context upload as BuildKit reported it.
type Transfer struct {
	Bytes   int64
	Seconds float64
}

// ContextTransfers reads the finished build context uploads from plain
// progress output, in order: the steps named "[internal] load build
// context", not the .dockerignore's upload (also "transferring context").
// Step numbers start over with each build, so a step's name is the last one
// printed for its number.
func ContextTransfers(progress string) []Transfer {
	scale := map[string]float64{"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
	names := map[string]string{}
	var out []Transfer
	for _, line := range strings.Split(progress, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := vertexName.FindStringSubmatch(line); m != nil {
			names[m[1]] = m[2]
			continue
		}
		m := contextDone.FindStringSubmatch(line)
		if m == nil || names[m[1]] != "[internal] load build context" {
			continue
		}
		n, _ := strconv.ParseFloat(m[2], 64)
		s, _ := strconv.ParseFloat(m[4], 64)
		out = append(out, Transfer{Bytes: int64(n * scale[m[3]]), Seconds: s})
	}
	return out
}
