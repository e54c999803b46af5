package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/builder/doctor"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// remotePool is two buildkitd behind mTLS, as a builder fleet would be.
type remotePool struct {
	kit   *harness.Env
	fleet *harness.FleetTLS
	nodes map[string]*harness.Buildkitd // by tcp:// endpoint
	eps   []string
	// probeTimeout is config's probe_timeout: loadedProbeTimeout unless the
	// test is about the deadline (and so runs alone).
	probeTimeout string
}

// loadedProbeTimeout is the probe_timeout of a pool test that is not about
// the deadline: with other tests running at once a healthy node's probe can
// take over a second, and the job would route around it.
const loadedProbeTimeout = "5s"

func startPool(t *testing.T, n int, opts ...harness.Options) *remotePool {
	t.Helper()
	var o harness.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	return startPoolOf(t, n, o, harness.BuildkitdOptions{})
}

// startPoolOf starts n nodes like node (its name, address and TLS set
// here).
func startPoolOf(t *testing.T, n int, o harness.Options, node harness.BuildkitdOptions) *remotePool {
	t.Helper()
	kit := harness.Start(t, o)
	fleet, err := kit.NewFleetTLS("fleet")
	if err != nil {
		t.Fatal(err)
	}
	p := &remotePool{kit: kit, fleet: fleet, nodes: map[string]*harness.Buildkitd{}, probeTimeout: loadedProbeTimeout}
	for i := range n {
		node.Name, node.TCP, node.TLS, node.InsecureRegistries = fmt.Sprintf("node-%d", i), true, &fleet.Server, []string{kit.Registry.Host}
		b, err := kit.StartBuildkitdWith(node)
		if err != nil {
			t.Fatal(err)
		}
		p.nodes[b.TCPAddr] = b
		p.eps = append(p.eps, b.TCPAddr)
	}
	return p
}

// config is a dockhand.toml using the pool with client certificate tls.
func (p *remotePool) config(state string, tls harness.TLSFiles, endpoints []string, extra string) string {
	quoted := make([]string, len(endpoints))
	for i, e := range endpoints {
		quoted[i] = fmt.Sprintf("%q", e)
	}
	if !strings.Contains(extra, "builders =") {
		extra = "builders = [\"remote\"]\n" + extra
	}
	return fmt.Sprintf(`state_dir = %q
probe_timeout = %q
%s
[remote]
endpoints = [%s]
ca = %q
cert = %q
key = %q
`, state, p.probeTimeout, extra, strings.Join(quoted, ", "), tls.CA, tls.Cert, tls.Key)
}

// TestRemotePoolAffinityAndFailover: jobs of one pipeline land on the same
// mTLS node, whatever way they build (docker build, docker buildx build,
// docker buildx bake, buildctl); when that node dies, the next job lands on
// the other one.
func TestRemotePoolAffinityAndFailover(t *testing.T) {
	// Not parallel: it asserts a choice within probe_timeout and a 1 s margin.
	p := startPool(t, 2)
	p.probeTimeout = "1s"
	r := newRig(t)
	// Probe results are shared for a minute: a node that dies meanwhile is
	// still seen at once (it refuses the connect that checks a shared result).
	writeFile(t, r.config, p.config(r.state, p.fleet.Client, p.eps, `probe_cache_ttl = "60s"`))
	const slug = "affinity-app"
	home := builder.Rendezvous(slug, p.eps)[0]
	other := builder.Rendezvous(slug, p.eps)[1]
	ref := p.kit.Registry.Host + "/affinity/app"
	dockerfile := fmt.Sprintf(`printf 'FROM %s\nRUN echo "$RANDOM$RANDOM" > /r\n' > Dockerfile
printf 'target "default" {\n  tags = ["%s:bake"]\n  output = ["type=registry"]\n}\n' > docker-bake.hcl
echo "buildkit-host=$BUILDKIT_HOST builder=$(docker buildx inspect | sed -n 's/^Name: *//p' | head -n 1)"
`, p.kit.BaseImage, ref)
	env := map[string]string{"BUILDKITE_PIPELINE_SLUG": slug, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}

	// Job 1: docker buildx build, pushed.
	id, agent := r.start(dockerfile+"docker buildx build --progress plain --push -t "+ref+":1 .", env)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("job 1: %+v\n%s", f, log)
	}
	if ep, _ := chosen(t, log); ep != home {
		t.Errorf("job 1 ran on %s, want the pipeline's node %s\n%s", ep, home, log)
	}
	if !strings.Contains(log, "buildkit-host="+home+" builder="+buildx.RemoteName) {
		t.Errorf("the command did not get BUILDKIT_HOST, or buildx's current builder is not dockhand's:\n%s", log)
	}
	if code := manifestStatus(t, p.kit.Registry.Host, "affinity/app", "1"); code != 200 {
		t.Errorf("job 1's image: HTTP %d", code)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[home])); n != 1 {
		t.Errorf("the pipeline's node ran %d builds, want 1", n)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[other])); n != 0 {
		t.Errorf("the other node ran %d builds, want 0", n)
	}

	// Job 2, same pipeline: docker build, bake and buildctl all go to the
	// same node.
	id, agent = r.start(dockerfile+fmt.Sprintf(`docker build --progress plain --push -t %s:2 .
docker buildx bake --progress plain
buildctl --tlsdir "$BUILDKIT_TLS_DIR" build --frontend dockerfile.v0 --local context=. --local dockerfile=. --output type=image,name=%s:buildctl,push=true
`, ref, ref), env)
	f, log = r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("job 2: %+v\n%s", f, log)
	}
	if ep, _ := chosen(t, log); ep != home {
		t.Errorf("job 2 ran on %s, want %s again", ep, home)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[home])); n != 4 {
		t.Errorf("the pipeline's node ran %d builds after job 2, want 4 (build, bake, buildctl)", n)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[other])); n != 0 {
		t.Errorf("the other node ran %d builds, want 0", n)
	}
	for _, tag := range []string{"2", "bake", "buildctl"} {
		if code := manifestStatus(t, p.kit.Registry.Host, "affinity/app", tag); code != 200 {
			t.Errorf("job 2's %s image: HTTP %d", tag, code)
		}
	}

	// The pipeline's node dies: job 3 goes to the other node.
	p.nodes[home].Stop()
	id, agent = r.start(dockerfile+"docker buildx build --progress plain --push -t "+ref+":3 .", env)
	f, log = r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("job 3: %+v\n%s", f, log)
	}
	ep, took := chosen(t, log)
	t.Logf("job 3 after its node died:\n%s", section(log))
	if ep != other {
		t.Errorf("job 3 ran on %s after %s died, want %s\n%s", ep, home, other, log)
	}
	// The precise bound (probe_timeout + 50 ms) is make bench's; here the
	// margin absorbs a loaded CI machine, far below buildx's own 20 s wait.
	if took > 2*time.Second {
		t.Errorf("choosing took %s with a dead node, want within probe_timeout (1s) and a margin", took)
	}
	if !regexp.MustCompile(`probe remote ` + regexp.QuoteMeta(home) + `: down after \S+: connection refused`).MatchString(log) {
		t.Errorf("the log does not say the dead node refused:\n%s", log)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[other])); n != 1 {
		t.Errorf("the other node ran %d builds, want 1", n)
	}
	if left := r.jobDirs(); len(left) != 0 {
		t.Errorf("job dirs left behind: %q", left)
	}
}

// TestRemoteHangingEndpointIsBounded: an endpoint that accepts TCP and never
// answers costs the job at most probe_timeout, and is named in the log.
func TestRemoteHangingEndpointIsBounded(t *testing.T) {
	// Not parallel: it asserts a choice within probe_timeout and a 1 s margin.
	p := startPool(t, 1)
	p.probeTimeout = "1s"
	hang, err := harness.StartHanging()
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	state := filepath.Join(shortDir(t), "state")
	config := filepath.Join(t.TempDir(), "dockhand.toml")
	writeFile(t, config, p.config(state, p.fleet.Client, []string{hang.Addr, p.eps[0]}, ""))
	run := runBootstrap(t, config, "hang", `echo "host=$BUILDKIT_HOST"; cat "$DOCKHAND_JOB_DIR/job.json"`)
	if run.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", run.code, run.stdout, run.stderr)
	}
	ep, took := chosen(t, run.stdout)
	if ep != p.eps[0] || !strings.Contains(run.stdout, "host="+p.eps[0]) {
		t.Errorf("chose %s, want the healthy %s\n%s", ep, p.eps[0], run.stdout)
	}
	if took > 2*time.Second {
		t.Errorf("choosing took %s with a hanging endpoint, want at most probe_timeout (1s) and a margin", took)
	}
	if !strings.Contains(run.stdout, "probe remote "+hang.Addr+": down after") || !strings.Contains(run.stdout, "no answer within 1s") {
		t.Errorf("the log does not name the hanging endpoint:\n%s", run.stdout)
	}
	if hang.Accepted() == 0 {
		t.Error("the hanging endpoint was never dialled")
	}
	// The job state records the builder for the cache injection.
	for _, want := range []string{`"kind": "remote"`, `"name": "dockhand-remote"`, `"nodes": 1`, `"endpoint": "` + p.eps[0] + `"`} {
		if !strings.Contains(run.stdout, want) {
			t.Errorf("job.json lacks %s:\n%s", want, run.stdout)
		}
	}
	t.Logf("chosen in %s (bootstrap %s)", took, run.took)
}

// TestRemoteRejectsABadClientCertificate: a client certificate from another
// CA is rejected by the builders; the job fails with 125 and one line naming
// each candidate and why, unless the queue's builders are optional.
func TestRemoteRejectsABadClientCertificate(t *testing.T) {
	t.Parallel()
	p := startPool(t, 2)
	dir := t.TempDir()
	state := filepath.Join(shortDir(t), "state")
	config := filepath.Join(dir, "dockhand.toml")
	writeFile(t, config, p.config(state, p.fleet.Rogue, p.eps, ""))
	run := runBootstrap(t, config, "rogue", "echo the-job-ran")
	if run.code != 125 {
		t.Fatalf("exit %d, want 125\n%s\n%s", run.code, run.stdout, run.stderr)
	}
	lines := strings.Split(strings.TrimSpace(run.stderr), "\n")
	if len(lines) != 1 {
		t.Fatalf("stderr has %d lines, want one:\n%s", len(lines), run.stderr)
	}
	for _, ep := range p.eps {
		if !strings.Contains(lines[0], ep+": TLS: remote error: tls: unknown certificate authority") {
			t.Errorf("the line does not say %s rejected the certificate: %s", ep, lines[0])
		}
	}
	if strings.Contains(run.stdout, "the-job-ran") {
		t.Error("the job ran although no builder was available")
	}
	if entries, _ := os.ReadDir(filepath.Join(state, "jobs")); len(entries) > 1 {
		t.Errorf("job dir left: %v", entries)
	}

	writeFile(t, config, p.config(state, p.fleet.Rogue, p.eps, "builders_optional = true"))
	run = runBootstrap(t, config, "rogue", `echo "the-job-ran builder=[$BUILDX_BUILDER]"`)
	if run.code != 0 || !strings.Contains(run.stdout, "the-job-ran builder=[]") {
		t.Fatalf("with builders_optional: exit %d\n%s\n%s", run.code, run.stdout, run.stderr)
	}
	if !strings.Contains(run.stdout, "warning: no builder available: remote: ") || !strings.Contains(run.stdout, "unknown certificate authority") {
		t.Errorf("no warning naming the rejection:\n%s", run.stdout)
	}
}

// TestConcurrentJobsShareOneProbe: jobs starting together on a host probe
// the builders once; the others use what the first found.
func TestConcurrentJobsShareOneProbe(t *testing.T) {
	t.Parallel()
	p := startPool(t, 2)
	state := filepath.Join(shortDir(t), "state")
	config := filepath.Join(t.TempDir(), "dockhand.toml")
	writeFile(t, config, p.config(state, p.fleet.Client, p.eps, `probe_cache_ttl = "30s"`))
	const jobs = 6
	runs := make(chan bootstrapRun, jobs)
	for i := range jobs {
		go func() { runs <- runBootstrap(t, config, fmt.Sprintf("pipe-%d", i), `echo "host=$BUILDKIT_HOST"`) }()
	}
	probed, shared := 0, 0
	for range jobs {
		run := <-runs
		if run.code != 0 {
			t.Errorf("exit %d\n%s\n%s", run.code, run.stdout, run.stderr)
			continue
		}
		switch {
		case strings.Contains(run.stdout, "builder: probed 2 endpoint(s)"):
			probed++
		case strings.Contains(run.stdout, "builder: probes shared by another job"):
			shared++
		default:
			t.Errorf("the log says neither probed nor shared:\n%s", run.stdout)
		}
	}
	if probed != 1 || shared != jobs-1 {
		t.Errorf("%d jobs probed and %d shared, want 1 and %d", probed, shared, jobs-1)
	}
}

// TestDoctorShowsTheBuilder: `dockhand doctor` shows the builder a job
// would get, why, each probe with its latency and BuildKit version, and
// warns about plaintext endpoints.
func TestDoctorShowsTheBuilder(t *testing.T) {
	t.Parallel()
	p := startPool(t, 1)
	hang, err := harness.StartHanging()
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "dockhand.toml")
	writeFile(t, config, p.config(filepath.Join(dir, "state"), p.fleet.Client, []string{p.eps[0], hang.Addr}, ""))
	env := []string{"PATH=" + p.kit.ToolBin + ":/usr/bin:/bin", "HOME=" + dir}
	run := runShell(t, []string{harness.DockhandBin(t), "doctor", "--config", config, "--json"}, dir, "", env)
	if run.code != 0 {
		t.Fatalf("doctor --json: exit %d\n%s", run.code, run.stderr)
	}
	var got struct {
		Builder doctor.DiagnosisJSON `json:"builder"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, run.stdout)
	}
	b := got.Builder
	if b.Kind != "remote" || b.Name != buildx.RemoteName || len(b.Endpoints) != 1 || b.Endpoints[0] != p.eps[0] || !strings.Contains(b.Reason, "rendezvous over 1 of 2 healthy") {
		t.Errorf("builder = %+v", b)
	}
	if len(b.Probes) != 2 || !b.Probes[0].OK || b.Probes[0].Version == "" || b.Probes[0].LatencyMS <= 0 ||
		b.Probes[1].OK || b.Probes[1].Error != "no answer within "+p.probeTimeout {
		t.Errorf("probes = %+v", b.Probes)
	}
	if len(b.Warnings) != 0 {
		t.Errorf("warnings with mTLS and matching versions: %q", b.Warnings)
	}

	run = runShell(t, []string{harness.DockhandBin(t), "doctor", "--config", config}, dir, "", env)
	if run.code != 0 || !strings.Contains(run.stdout, `# builder: remote "dockhand-remote" on `+p.eps[0]) ||
		!strings.Contains(run.stdout, "# builder: probe remote "+hang.Addr+": down after") {
		t.Errorf("doctor text: exit %d\n%s\n%s", run.code, run.stdout, run.stderr)
	}

	// Plaintext: warned about; the TLS-only node refuses it.
	writeFile(t, config, fmt.Sprintf("state_dir = %q\nbuilders = [\"remote\"]\n[remote]\nendpoints = [%q]\n", filepath.Join(dir, "state"), p.eps[0]))
	run = runShell(t, []string{harness.DockhandBin(t), "doctor", "--config", config, "--json"}, dir, "", env)
	got.Builder = doctor.DiagnosisJSON{}
	if err := json.Unmarshal([]byte(run.stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, run.stdout)
	}
	if got.Builder.Kind != "" || !strings.HasPrefix(got.Builder.Reason, "no builder available: remote: "+p.eps[0]) {
		t.Errorf("plaintext against a TLS node: %+v", got.Builder)
	}
	if len(got.Builder.Warnings) != 1 || !strings.Contains(got.Builder.Warnings[0], p.eps[0]+" is plaintext tcp://") {
		t.Errorf("warnings = %q, want the plaintext endpoint", got.Builder.Warnings)
	}
}
