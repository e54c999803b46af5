package e2e

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dockhand-ci/dockhand/builder"
)

// TestLostBuildRunsAgainOnTheNextNode: the pool node running a job's build
// is killed while the build's RUN is running (the RUN asks the test's HTTP
// server, which kills the node when the first such request arrives and
// holds it; later ones are answered at once). The job still passes: the
// shim ran the build again, once, on the pipeline's next node; the job log
// and the annotation say so. A RUN that exits 1 is not run again: one
// build in the node's history. A step with DOCKHAND_RETRY_LOST_BUILDS=false
// whose node dies fails, as without dockhand.
func TestLostBuildRunsAgainOnTheNextNode(t *testing.T) {
	t.Parallel()
	p := startPool(t, 3)
	r := newRig(t)
	// Routing by pipeline only (balance_factor 0): the host counts the jobs
	// it routed on their node for the probe cache's TTL, which would spill
	// this test's serial jobs; the node each build runs on must be known.
	cfg := p.config(r.state, p.fleet.Client, p.eps, `probe_cache_ttl = "60s"`)
	writeFile(t, r.config, strings.Replace(cfg, "[remote]\n", "[remote]\nbalance_factor = 0\n", 1))
	const slug = "retry-app"
	order := builder.Rendezvous(slug, p.eps)
	first, home, other := order[0], order[1], order[2]
	ref := p.kit.Registry.Host + "/retry/app"
	env := map[string]string{"BUILDKITE_PIPELINE_SLUG": slug, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}

	// A RUN that fails on its own: not run again.
	id, agent := r.start(fmt.Sprintf(`printf 'FROM %s\nRUN echo failing; exit 1\n' > Dockerfile
docker buildx build --progress plain -t %s:fail .
`, p.kit.BaseImage, ref), env)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "1" {
		t.Fatalf("the failing build's job: %+v, want exit 1\n%s", f, log)
	}
	if strings.Contains(log, "lost its node") {
		t.Errorf("a RUN's own failure was taken for a lost node:\n%s", log)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[first])); n != 1 {
		t.Errorf("the pipeline's node ran %d builds, want the failed one only", n)
	}
	for _, ep := range []string{home, other} {
		if n := len(histories(t, p.kit.Kit, p.nodes[ep])); n != 0 {
			t.Errorf("node %s ran %d builds, want 0: a failed RUN was run again", ep, n)
		}
	}

	// The node dies mid-build.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The next RUN to ask kills the node named here (the RUN runs on it)
	// and gets no answer; later ones are answered at once.
	var mu sync.Mutex
	kill := ""
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		victim := kill
		kill = ""
		mu.Unlock()
		if victim != "" {
			p.nodes[victim].Stop()
			select {
			case <-release:
			case <-req.Context().Done():
			}
			return
		}
		fmt.Fprintln(w, "go")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { close(release); srv.Close() })
	waiting := func(tag string) string {
		return fmt.Sprintf(`printf 'FROM %s\nRUN wget -q -O /answer http://%s/%s && cat /answer\n' > Dockerfile
docker buildx build --progress plain --push -t %s:%s .
`, p.kit.BaseImage, l.Addr(), tag, ref, tag)
	}

	// Retries off for the step: its node dies, the step fails.
	kill = first
	id, agent = r.start(waiting("off"), map[string]string{"BUILDKITE_PIPELINE_SLUG": slug, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1", "DOCKHAND_RETRY_LOST_BUILDS": "false"})
	f, log = r.finish(id, agent)
	if f.ExitStatus == "0" || strings.Contains(log, "lost its node") {
		t.Errorf("with DOCKHAND_RETRY_LOST_BUILDS=false the lost build passed or ran again: %+v\n%s", f, log)
	}
	for _, ep := range []string{home, other} {
		if n := len(histories(t, p.kit.Kit, p.nodes[ep])); n != 0 {
			t.Errorf("node %s ran %d builds with retries off, want 0", ep, n)
		}
	}

	// Retries on (the default): the pipeline's node now is home.
	mu.Lock()
	kill = home
	mu.Unlock()
	id, agent = r.start(waiting("1"), env)
	f, log = r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("the job whose node died: %+v\n%s", f, log)
	}
	want := "dockhand: warning: the build lost its node " + home + " ("
	if n := strings.Count(log, want); n != 1 {
		t.Errorf("%d lines %q, want 1:\n%s", n, want, log)
	}
	if !strings.Contains(log, "; running it again, once, on "+other+" (remote.retry_lost_builds)") {
		t.Errorf("the log does not say where the build ran again:\n%s", log)
	}
	if code := manifestStatus(t, p.kit.Registry.Host, "retry/app", "1"); code != 200 {
		t.Errorf("the image: HTTP %d", code)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[other])); n != 1 {
		t.Errorf("the other node ran %d builds, want 1 (the rerun)", n)
	}
	as := r.srv.Annotations(id)
	if len(as) != 1 {
		t.Fatalf("%d annotations, want 1", len(as))
	}
	body := html.UnescapeString(as[0].Body)
	t.Logf("annotation:\n%s", body)
	if !strings.Contains(body, "| lost its node: ") || !strings.Contains(body, "<code>"+home+"</code><br>→ <code>"+other+"</code> (run again, once)") {
		t.Errorf("the annotation has no row for the lost build:\n%s", body)
	}

	// The host's next job does not go to the lost node.
	id, agent = r.start(fmt.Sprintf(`printf 'FROM %s\nRUN echo next\n' > Dockerfile
docker buildx build --progress plain .
`, p.kit.BaseImage), env)
	f, log = r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("the next job: %+v\n%s", f, log)
	}
	if ep, _ := chosen(t, log); ep != other {
		t.Errorf("the next job ran on %s, want %s", ep, other)
	}
	if !strings.Contains(log, "lost a build: ") {
		t.Errorf("the next job's probes do not say the node was marked down:\n%s", log)
	}
}
