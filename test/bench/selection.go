package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/env"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// selectionBench measures a job's builder choice (buildx.Select, as the
// bootstrap runs it: dockhand-cloud probes every endpoint over mTLS, then
// the plan, the instance file and the TLS links) against five real buildkitd,
// then against four and one endpoint that accepts TCP and never answers.
// Results are not shared between runs, so every run probes.
func selectionBench(dockhand, dir string, runs int) (failed bool, err error) {
	kitDir := filepath.Join(dir, "selection")
	if err := os.MkdirAll(kitDir, 0o700); err != nil {
		return false, err
	}
	kit, err := harness.New(kitDir)
	if err != nil {
		return false, err
	}
	defer kit.Close()
	fleet, err := kit.NewFleetTLS("fleet")
	if err != nil {
		return false, err
	}
	var eps []string
	for i := range 5 {
		b, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: fmt.Sprintf("node-%d", i), TCP: true, TLS: &fleet.Server})
		if err != nil {
			return false, err
		}
		eps = append(eps, b.TCPAddr)
	}
	hang, err := harness.StartHanging()
	if err != nil {
		return false, err
	}
	defer hang.Close()

	cfg := env.Default("bench")
	cfg.Builders = []string{env.BuilderRemote}
	cfg.Remote.CA, cfg.Remote.Cert, cfg.Remote.Key = fleet.Client.CA, fleet.Client.Cert, fleet.Client.Key
	cfg.ProbeCacheTTL = 0
	state := filepath.Join(dir, "selection-state")
	e := env.FromSlice([]string{"PATH=/usr/bin:/bin", "BUILDKITE_PIPELINE_SLUG=bench"})
	n := 0
	selectOnce := func() (time.Duration, error) {
		n++
		job := filepath.Join(state, "jobs", fmt.Sprintf("job-%d", n))
		if err := os.MkdirAll(filepath.Join(job, "docker"), 0o700); err != nil {
			return 0, err
		}
		defer os.RemoveAll(job)
		start := time.Now()
		sel, err := buildx.Select(buildx.SetupOptions{Config: cfg, Env: e, StateDir: state, JobDir: job,
			DockerConfig: filepath.Join(job, "docker"), Self: dockhand, DockerSocket: filepath.Join(dir, "no-docker.sock")})
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if sel.Builder == nil {
			return 0, fmt.Errorf("no builder chosen")
		}
		return took, nil
	}

	fmt.Printf("\n| builder selection (`buildx.Select` with `dockhand-cloud probe`, mTLS, probe_timeout %s) | runs | median | p90 | max | bar |\n|---|---|---|---|---|---|\n", cfg.ProbeTimeout)
	for _, c := range []struct {
		name  string
		eps   []string
		runs  int
		check func(median, worst time.Duration) (string, bool)
	}{
		{"5 healthy endpoints", eps, runs, func(median, _ time.Duration) (string, bool) {
			return "median < 100 ms", median < 100*time.Millisecond
		}},
		{"4 healthy + 1 hanging", append(slices.Clone(eps[:4]), hang.Addr), max(runs/10, 5), func(_, worst time.Duration) (string, bool) {
			bar := cfg.ProbeTimeout + 50*time.Millisecond
			return "max ≤ " + ms(bar), worst <= bar
		}},
	} {
		cfg.Remote.Endpoints = c.eps
		if _, err := selectOnce(); err != nil { // warm-up
			return false, fmt.Errorf("%s: %w", c.name, err)
		}
		var ds []time.Duration
		for range c.runs {
			d, err := selectOnce()
			if err != nil {
				return false, fmt.Errorf("%s: %w", c.name, err)
			}
			ds = append(ds, d)
		}
		slices.Sort(ds)
		median, p90, worst := ds[len(ds)/2], ds[len(ds)*9/10], ds[len(ds)-1]
		bar, ok := c.check(median, worst)
		verdict := "met"
		if !ok {
			verdict, failed = "MISSED", true
		}
		fmt.Printf("| %s | %d | %s | %s | %s | %s: %s |\n", c.name, c.runs, ms(median), ms(p90), ms(worst), bar, verdict)
	}
	return failed, nil
}

// runSelectionOnly is `go run ./test/bench -only selection`.
func runSelectionOnly(runs int) error {
	dockhand, _, dir, done, err := setup()
	if err != nil {
		return err
	}
	defer done()
	failed, err := selectionBench(dockhand, dir, max(runs/2, 20))
	if err != nil {
		return fmt.Errorf("builder selection: %w", err)
	}
	if failed {
		return fmt.Errorf("a bar was missed")
	}
	return nil
}
