package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestRemotePoolSpreadsAHotPipeline: three nodes that each run one step at
// a time; six jobs of one pipeline start a second apart on six hosts (each
// its own state dir, probing on its own). The pipeline's node is over the
// bound after its first builds, so jobs spill to the others: no node runs
// more than three, and the burst ends well under the time of running them
// one after another (what pure affinity does: all six on one node). Later,
// on an idle pool, two jobs of the pipeline both go to its node.
func TestRemotePoolSpreadsAHotPipeline(t *testing.T) {
	// Not parallel: its burst is timed against its own serial builds: other tests' load skews the ratio.
	p := startPoolOf(t, 3, harness.Options{}, harness.BuildkitdOptions{MaxParallelism: 1})
	const slug, hosts, work = "hot-app", 6, 8 // work: seconds each build's step runs
	configs := make([]string, hosts)
	for i := range configs {
		dir := shortDir(t)
		configs[i] = filepath.Join(dir, "dockhand.toml")
		writeFile(t, configs[i], p.config(filepath.Join(dir, "state"), p.fleet.Client, p.eps, ""))
	}
	job := func(i int, tag string) string {
		return fmt.Sprintf(`printf 'FROM %s\nRUN echo %s-%d && sleep %d\n' > Dockerfile
buildctl --tlsdir "$BUILDKIT_TLS_DIR" build --progress plain --frontend dockerfile.v0 --local context=. --local dockerfile=.`, p.kit.BaseImage, tag, i, work)
	}
	type run struct {
		bootstrapRun
		i int
	}
	runs := make(chan run, hosts)
	start := time.Now()
	for i := range hosts {
		if i > 0 {
			time.Sleep(time.Second) // the load: jobs starting a second apart, not a wait for anything
		}
		go func() { runs <- run{runBootstrap(t, configs[i], slug, job(i, "burst")), i} }()
	}
	perNode := map[string][]int{}
	for range hosts {
		r := <-runs
		if r.code != 0 {
			t.Fatalf("job %d: exit %d\n%s\n%s", r.i, r.code, r.stdout, r.stderr)
		}
		ep, _ := chosen(t, r.stdout)
		perNode[ep] = append(perNode[ep], r.i)
		t.Logf("job %d on %s after %s: %s", r.i, ep, r.took.Round(time.Millisecond), routeLine(r.stdout))
	}
	burst := time.Since(start)
	for ep, jobs := range perNode {
		if len(jobs) > 3 {
			t.Errorf("%s ran %d of the %d jobs (%v), want at most 3", ep, len(jobs), hosts, jobs)
		}
		if n := len(histories(t, p.kit.Kit, p.nodes[ep])); n != len(jobs) {
			t.Errorf("%s remembers %d builds, the logs say %d", ep, n, len(jobs))
		}
	}

	// Later, the pool idle: two jobs one after the other, both on the
	// pipeline's node. Their time is the serial estimate's unit.
	home := builder.Rendezvous(slug, p.eps)[0]
	var alone time.Duration
	for i := range 2 {
		r := runBootstrap(t, configs[i], slug, job(i, "idle"))
		if r.code != 0 {
			t.Fatalf("idle job %d: exit %d\n%s\n%s", i, r.code, r.stdout, r.stderr)
		}
		if ep, _ := chosen(t, r.stdout); ep != home {
			t.Errorf("idle job %d went to %s, want the pipeline's node %s: %s", i, ep, home, routeLine(r.stdout))
		}
		alone = max(alone, r.took)
	}
	serial := time.Duration(hosts) * alone
	t.Logf("burst %s over %d nodes %v; one job alone %s, so %s one after another", burst.Round(time.Millisecond), len(perNode), perNode, alone.Round(time.Millisecond), serial.Round(time.Millisecond))
	if burst > serial*3/4 {
		t.Errorf("the burst took %s, want well under the serial %s (at most 3/4 of it)", burst, serial)
	}
}

// routeLine is the job log's line saying where the builder was chosen.
func routeLine(log string) string {
	i := slices.IndexFunc(strings.Split(log, "\n"), func(l string) bool { return strings.Contains(l, "rendezvous over") })
	if i < 0 {
		return "(no route line)"
	}
	return strings.TrimSpace(strings.Split(log, "\n")[i])
}
