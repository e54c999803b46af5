package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// namespaceBench measures a job's choice of Namespace (builder.Select: the
// tenant token, then `nsc docker buildx setup`, then a probe of the builder
// it set up) with the fake nsc's API answering each call after 0 ms and
// 150 ms, on a host where nothing is shared yet (cold), where only the
// tenant token is (as before the builder setup was shared) and where both
// are (warm).
func namespaceBench(dockhand, dir string, runs int) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	nsDir := filepath.Join(dir, "namespace")
	if err := os.MkdirAll(nsDir, 0o700); err != nil {
		return err
	}
	nsc := filepath.Join(nsDir, "nsc")
	build := exec.Command("go", "build", "-o", nsc, "./test/fakensc")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the fake nsc: %w\n%s", err, out)
	}
	// The builder nsc sets up is a real buildkitd over mTLS: dockhand probes
	// it before choosing it.
	kit, err := harness.New(filepath.Join(nsDir, "kit"))
	if err != nil {
		return err
	}
	defer kit.Close()
	tls, err := kit.NewFleetTLS("fleet")
	if err != nil {
		return err
	}
	node, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: "namespace-node", TCP: true, TLS: &tls.Server})
	if err != nil {
		return err
	}
	backendPath := filepath.Join(nsDir, "backend.json")
	calls := filepath.Join(nsDir, "calls.log")
	cfg := config.Default("bench")
	cfg.Builders = []string{config.BuilderNamespace}
	cfg.ProbeTimeout = 5 * time.Second
	cfg.Namespace = config.Namespace{NSC: nsc, Auth: config.AuthCognito, TenantID: "tnt_bench", AWSRegion: "us-east-1", IdentityPool: "pool"}
	state := filepath.Join(nsDir, "state")
	e := config.FromSlice([]string{"PATH=/usr/bin:/bin", "BUILDKITE_PIPELINE_SLUG=bench", "FAKENSC_BACKEND=" + backendPath})
	setup := builder.SetupOptions{Config: cfg, Env: e, StateDir: state, Self: dockhand, DockerSocket: filepath.Join(dir, "no-docker.sock")}
	// What a job finds on the host: nothing (cold), the tenant token only
	// (as before the builder setup was shared), or both.
	type warmth struct {
		what   string
		remove []string // under STATE/namespace, before each job
	}
	cases := []warmth{
		{"cold: nothing shared (a token exchange and a setup)", []string{"*"}},
		{"warm, as before: the tenant token shared, a setup every job", []string{"setup-*.json"}},
		{"warm: the tenant token and the builder setup shared", nil},
	}
	selectOnce := func(w warmth) (time.Duration, error) {
		for _, pattern := range w.remove {
			matches, _ := filepath.Glob(filepath.Join(state, "namespace", pattern))
			for _, m := range matches {
				if err := os.RemoveAll(m); err != nil {
					return 0, err
				}
			}
		}
		sel, took, err := selectAsJob(setup)
		if err == nil && (sel.Builder == nil || sel.Builder.Kind != config.BuilderNamespace) {
			err = fmt.Errorf("namespace not chosen: %v", sel.Lines())
		}
		return took, err
	}
	fmt.Printf("\n| Namespace choice (`builder.Select`, fake nsc, cognito auth, one platform) | runs | nsc calls a job | median | p90 |\n|---|---|---|---|---|\n")
	for _, latency := range []string{"0ms", "150ms"} {
		data, _ := json.Marshal(map[string]any{"tenant_id": "tnt_bench", "api_latency": latency, "log": calls,
			"builders": []map[string]string{{"platform": "linux/amd64", "endpoint": node.TCPAddr,
				"server_ca": tls.Client.CA, "client_cert": tls.Client.Cert, "client_key": tls.Client.Key}}})
		if err := os.WriteFile(backendPath, data, 0o600); err != nil {
			return err
		}
		for _, w := range cases {
			if _, err := selectOnce(w); err != nil { // warm-up (and the warm cases' token and setup)
				return err
			}
			os.Remove(calls)
			ds, err := sortedRuns(runs, func() (time.Duration, error) { return selectOnce(w) })
			if err != nil {
				return err
			}
			logged, _ := os.ReadFile(calls)
			perJob := float64(countLines(logged)) / float64(runs)
			fmt.Printf("| %s per API call, %s | %d | %.1f | %s | %s |\n", latency, w.what, runs, perJob, ms(ds[len(ds)/2]), ms(ds[len(ds)*9/10]))
		}
	}
	return nil
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// runNamespaceOnly is `go run ./test/bench -only namespace`.
func runNamespaceOnly(runs int) error {
	dockhand, _, dir, done, err := setup()
	if err != nil {
		return err
	}
	defer done()
	return namespaceBench(dockhand, dir, max(runs/10, 10))
}
