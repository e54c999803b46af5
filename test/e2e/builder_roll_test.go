package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dockhand-ci/dockhand/fleet"
	"github.com/dockhand-ci/dockhand/test/ecrapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestRollingReplacementFailsNoBuild: an EC2-discovered pool of three
// builders is replaced node by node while jobs run, as an instance refresh
// with the drain lifecycle does it: a new builder joins, the old one is
// tagged dockhand:drain, the builder AMI's own drain (buildkitd-drain)
// waits for its builds and a quiet period, and only then is it stopped and
// gone. Twenty jobs of five pipelines on four hosts, two builds each, all
// pass, and the old and the new builders both ran some.
func TestRollingReplacementFailsNoBuild(t *testing.T) {
	// Not parallel: 20 jobs on 4 hosts probe a pool replaced under them with a
	// 2 s probe_timeout, which other tests' load could exceed.
	kit, tls, port := fleetKit(t)
	const key, secret = "AKIAROLLE2E000000001", "roll-e2e-secret"
	aws, err := ecrapi.Start(ecrapi.Options{Keys: map[string]string{key: secret}, Password: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(aws.Close)

	type builder struct {
		ip      string
		node    *harness.Buildkitd
		drained bool
		gone    bool
	}
	var mu sync.Mutex
	var pool []*builder
	publish := func() { // the group's instances as EC2 lists them
		var is []ecrapi.Instance
		for i, b := range pool {
			if b.gone {
				continue
			}
			tags := map[string]string{"Role": "buildkitd"}
			if b.drained {
				tags[fleet.DrainTag] = "true"
			}
			is = append(is, ecrapi.Instance{ID: fmt.Sprintf("i-%d", i), Region: "us-east-1", State: "running", PrivateIP: b.ip, Tags: tags})
		}
		aws.SetInstances(is...)
	}
	launch := func() *builder {
		ip := fmt.Sprintf("127.0.0.%d", len(pool)+1)
		n, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: "roll-" + ip, TCP: true, Listen: fmt.Sprintf("%s:%d", ip, port),
			TLS: &tls.Server, InsecureRegistries: []string{kit.Registry.Host}})
		if err != nil {
			t.Fatal(err)
		}
		b := &builder{ip: ip, node: n}
		mu.Lock()
		pool = append(pool, b)
		publish()
		mu.Unlock()
		return b
	}
	var old []*builder
	for range 3 {
		old = append(old, launch())
	}

	dir := shortDir(t)
	const hosts, perHost = 4, 5
	configs := make([]string, hosts)
	for h := range configs {
		configs[h] = filepath.Join(dir, fmt.Sprintf("host-%d.toml", h))
		writeFile(t, configs[h], fmt.Sprintf(`state_dir = %q
builders = ["remote"]
probe_timeout = "2s"
probe_cache_ttl = "1s"
[remote]
endpoints = ["ec2://us-east-1?tag:Role=buildkitd&port=%d"]
ca = %q
cert = %q
key = %q
server_name = "buildkitd.test"
discovery_ttl = "1s"
ec2_endpoint_url = %q
allow_loopback = true # the pool's builders are on this host
`, filepath.Join(dir, fmt.Sprintf("state-%d", h)), port, tls.Client.CA, tls.Client.Cert, tls.Client.Key, aws.URL))
	}
	awsEnv := []string{"AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent/credentials"}
	job := func(h, j int) string {
		var cmd strings.Builder
		for b := range 2 { // two builds a job: the second starts after the first, on the job's node
			fmt.Fprintf(&cmd, `printf 'FROM %s\nRUN echo %d-%d-%d && sleep 2\n' > Dockerfile
buildctl --tlsdir "$BUILDKIT_TLS_DIR" --tlsservername buildkitd.test build --frontend dockerfile.v0 --local context=. --local dockerfile=.
`, kit.BaseImage, h, j, b)
		}
		return cmd.String()
	}

	// The roll: for each old builder, a new one joins, the old one is
	// tagged, drains (the builder AMI's script, on the node's own socket)
	// and goes.
	drainScript := filepath.Join(harness.MustRepoRoot(t), "packer/files/buildkitd/buildkitd-drain")
	rolled := make(chan string, 1)
	go func() {
		var log strings.Builder
		// Sent however the goroutine ends: a t.Fatal in launch ends it early.
		defer func() { rolled <- log.String() }()
		for _, b := range old {
			launch()
			mu.Lock()
			b.drained = true
			publish()
			mu.Unlock()
			cmd := kit.Command(dir, []string{"BUILDKITD_SOCKET=" + strings.TrimPrefix(b.node.Addr, "unix://"), "BUILDKITD_BUILDCTL=" + kit.Bin("buildctl"),
				"BUILDKITD_DRAIN_TAG=false", "BUILDKITD_DRAIN_QUIET=5", "BUILDKITD_DRAIN_TIMEOUT=120", "BUILDKITD_DRAIN_POLL=1"}, "bash", drainScript)
			out, err := cmd.CombinedOutput()
			fmt.Fprintf(&log, "%s: %s", b.ip, out)
			if err != nil {
				fmt.Fprintf(&log, "%s: drain: %v\n", b.ip, err)
			}
			b.node.Stop()
			mu.Lock()
			b.gone = true
			publish()
			mu.Unlock()
		}
	}()

	type result struct {
		bootstrapRun
		h, j int
	}
	results := make(chan result, hosts*perHost)
	for h := range hosts {
		go func() {
			for j := range perHost {
				results <- result{runBootstrap(t, configs[h], fmt.Sprintf("roll-app-%d", (h+j)%5), job(h, j), awsEnv...), h, j}
			}
		}()
	}
	failed := 0
	on := map[string]int{}
	for range hosts * perHost {
		r := <-results
		if r.code != 0 {
			failed++
			t.Errorf("host %d job %d: exit %d\n%s\n%s", r.h, r.j, r.code, r.stdout, r.stderr)
			continue
		}
		ep, _ := chosen(t, r.stdout)
		on[ep]++
	}
	drains := <-rolled
	t.Logf("jobs per builder: %v\n%s", on, drains)
	if failed > 0 {
		t.Errorf("%d of %d jobs failed during the roll, want 0", failed, hosts*perHost)
	}
	var onOld, onNew int
	for i, b := range pool {
		n := on[fmt.Sprintf("tcp://%s:%d", b.ip, port)]
		if i < len(old) {
			onOld += n
		} else {
			onNew += n
		}
	}
	if onOld == 0 || onNew == 0 {
		t.Errorf("jobs on the old builders %d, on the new %d: the roll did not happen while they ran (%v)", onOld, onNew, on)
	}
	if strings.Count(drains, "buildkitd-drain: drained: no build for") != len(old) {
		t.Errorf("not every old builder drained:\n%s", drains)
	}
}
