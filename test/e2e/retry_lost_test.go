package e2e

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dockhand-ci/dockhand/buildx"
)

// TestLostBuildRunsAgainOnTheNextNode: the pool node running a job's build
// is killed while the build's RUN is running (the RUN asks the test's HTTP
// server, which kills the node when the first such request arrives and
// holds it; later ones are answered at once). The job still passes: the
// shim ran the build again, once, on the pipeline's next node; the job log
// and the annotation say so. A RUN that exits 1 is not run again: one
// build in the node's history.
func TestLostBuildRunsAgainOnTheNextNode(t *testing.T) {
	p := startPool(t, 2)
	r := newRig(t)
	writeFile(t, r.config, p.config(r.state, p.fleet.Client, p.eps, `probe_cache_ttl = "60s"`))
	const slug = "retry-app"
	home, other := buildx.Rendezvous(slug, p.eps)[0], buildx.Rendezvous(slug, p.eps)[1]
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
	if n := len(histories(t, p.kit.Kit, p.nodes[home])); n != 1 {
		t.Errorf("the pipeline's node ran %d builds, want the failed one only", n)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[other])); n != 0 {
		t.Errorf("the other node ran %d builds, want 0: a failed RUN was run again", n)
	}

	// The node dies mid-build.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var once sync.Once
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		first := false
		once.Do(func() { first = true })
		if first {
			p.nodes[home].Stop() // the RUN is running on it
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
	id, agent = r.start(fmt.Sprintf(`printf 'FROM %s\nRUN wget -q -O /answer http://%s/run && cat /answer\n' > Dockerfile
docker buildx build --progress plain --push -t %s:1 .
`, p.kit.BaseImage, l.Addr(), ref), env)
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
