package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/dockhand-ci/dockhand/test/ecrapi"
)

// The credential helper comparison: docker-credential-dockhand against the
// upstream docker-credential-ecr-login (github.com/awslabs/
// amazon-ecr-credential-helper v0.12.0, built by `make tools`), both asked
// for the same ECR registry with the same AWS keys, against the same fake
// ECR API (test/ecrapi) reached through AWS_ENDPOINT_URL_ECR.

const (
	benchKey      = "AKIADOCKHANDBENCH001"
	benchSecret   = "bench-secret-access-key"
	benchRegistry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
)

// helperSetup runs one credential helper with a cache of its own.
type helperSetup struct {
	bin  string
	env  func(cache string) []string
	name string
}

func credentialHelpers(dockhand, toolBin, dir string, fake *ecrapi.Server) (ours, upstream helperSetup, err error) {
	upstreamBin := filepath.Join(toolBin, "docker-credential-ecr-login")
	if _, err := os.Stat(upstreamBin); err != nil {
		return ours, upstream, fmt.Errorf("%s is missing: run make tools", upstreamBin)
	}
	link := filepath.Join(dir, "helper-bin", "docker-credential-dockhand")
	os.MkdirAll(filepath.Dir(link), 0o700)
	os.Remove(link)
	if err := os.Symlink(dockhand, link); err != nil {
		return ours, upstream, err
	}
	home := filepath.Join(dir, "helper-home")
	os.MkdirAll(home, 0o700)
	aws := []string{
		"PATH=/usr/bin:/bin", "HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + benchKey, "AWS_SECRET_ACCESS_KEY=" + benchSecret,
		"AWS_ENDPOINT_URL_ECR=" + fake.URL, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
	}
	ours = helperSetup{bin: link, name: "dockhand", env: func(cache string) []string {
		config := filepath.Join(cache, "dockhand.toml")
		os.MkdirAll(cache, 0o700)
		os.WriteFile(config, []byte(fmt.Sprintf("state_dir = %q\n", filepath.Join(cache, "state"))), 0o600)
		return append(append([]string{}, aws...), "DOCKHAND_CONFIG="+config)
	}}
	upstream = helperSetup{bin: upstreamBin, name: "ecr-login", env: func(cache string) []string {
		return append(append([]string{}, aws...), "AWS_ECR_CACHE_DIR="+cache)
	}}
	return ours, upstream, nil
}

// get runs one `get` and checks it answered the fake's token.
func (h helperSetup) get(env []string) func() error {
	return func() error {
		cmd := exec.Command(h.bin, "get")
		cmd.Env = env
		cmd.Stdin = strings.NewReader(benchRegistry)
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), `"Secret":"bench-registry-password"`) {
			return fmt.Errorf("%s get: %v: %s", h.name, err, out)
		}
		return nil
	}
}

// concurrentColdCalls runs 8 gets at once on an empty cache and returns the
// GetAuthorizationToken calls they made.
func concurrentColdCalls(h helperSetup, fake *ecrapi.Server, cache string) (int, error) {
	before := fake.Calls(ecrapi.OpGetAuthorizationToken)
	env := h.env(cache)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = h.get(env)() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return fake.Calls(ecrapi.OpGetAuthorizationToken) - before, nil
}

// credentialBench prints the comparison table and reports a missed bar.
func credentialBench(dockhand, toolBin, dir string, runs int) (failed bool, err error) {
	fake, err := ecrapi.Start(ecrapi.Options{Keys: map[string]string{benchKey: benchSecret}, Password: "bench-registry-password"})
	if err != nil {
		return false, err
	}
	defer fake.Close()
	ours, upstream, err := credentialHelpers(dockhand, toolBin, dir, fake)
	if err != nil {
		return false, err
	}

	// Warm: one cache each, primed by the warm-up runs.
	warm := pair{
		dockhand: ours.get(ours.env(filepath.Join(dir, "warm-dockhand"))),
		plain:    upstream.get(upstream.env(filepath.Join(dir, "warm-ecr-login"))),
		runs:     runs,
	}
	wOurs, wUp, err := measure(warm)
	if err != nil {
		return false, err
	}

	// Cold: a new, empty cache for every run.
	coldRuns := max(runs/10, 10)
	var n int
	fresh := func(h helperSetup) func() error {
		return func() error {
			n++
			return h.get(h.env(filepath.Join(dir, fmt.Sprintf("cold-%s-%d", h.name, n))))()
		}
	}
	cOurs, cUp, err := measure(pair{dockhand: fresh(ours), plain: fresh(upstream), runs: coldRuns})
	if err != nil {
		return false, err
	}

	// Races differ from run to run: five rounds each, every count shown.
	var callsOurs, callsUp []int
	for round := range 5 {
		c, err := concurrentColdCalls(ours, fake, filepath.Join(dir, fmt.Sprintf("concurrent-dockhand-%d", round)))
		if err != nil {
			return false, err
		}
		callsOurs = append(callsOurs, c)
		if c, err = concurrentColdCalls(upstream, fake, filepath.Join(dir, fmt.Sprintf("concurrent-ecr-login-%d", round))); err != nil {
			return false, err
		}
		callsUp = append(callsUp, c)
	}

	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		failed = true
		return "MISSED"
	}
	warmRatio := float64(wOurs) / float64(wUp)
	fmt.Printf("\n| credential helper, `get` of an ECR registry (fake ECR API) | docker-credential-dockhand | docker-credential-ecr-login v0.12.0 | ratio | bar |\n|---|---|---|---|---|\n")
	fmt.Printf("| warm get, cache hit (median of %d) | %s | %s | %.2f | ≤ 1.00: %s |\n", runs, ms(wOurs), ms(wUp), warmRatio, verdict(warmRatio <= 1.0))
	fmt.Printf("| cold get, empty cache (median of %d) | %s | %s | %.2f | — |\n", coldRuns, ms(cOurs), ms(cUp), float64(cOurs)/float64(cUp))
	allOne := !slices.ContainsFunc(callsOurs, func(c int) bool { return c != 1 })
	fmt.Printf("| GetAuthorizationToken calls by 8 concurrent cold gets (5 rounds) | %s | %s | — | 1 each: %s |\n",
		counts(callsOurs), counts(callsUp), verdict(allOne))
	return failed, nil
}

func counts(cs []int) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprint(c)
	}
	return strings.Join(parts, ", ")
}
