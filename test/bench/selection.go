package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// selectionBench measures a job's builder choice (builder.Select, as the
// bootstrap runs it: dockhand-cloud probes every endpoint over mTLS, then
// the plan, the instance file and the TLS links) against five real buildkitd,
// then against four and one endpoint that accepts TCP and never answers.
// Results are not shared between runs, so every run probes.
func selectionBench(dockhand, dir string, runs int) (failed bool, err error) {
	kit, _, err := newKit(dir, "selection")
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

	cfg := config.Default("bench")
	cfg.Builders = []string{config.BuilderRemote}
	cfg.Remote.CA, cfg.Remote.Cert, cfg.Remote.Key = fleet.Client.CA, fleet.Client.Cert, fleet.Client.Key
	cfg.ProbeCacheTTL = 0
	state := filepath.Join(dir, "selection-state")
	e := config.FromSlice([]string{"PATH=/usr/bin:/bin", "BUILDKITE_PIPELINE_SLUG=bench"})
	setup := builder.SetupOptions{Config: cfg, Env: e, StateDir: state, Self: dockhand, DockerSocket: filepath.Join(dir, "no-docker.sock")}
	selectOnce := func() (time.Duration, error) {
		sel, took, err := selectAsJob(setup)
		if err == nil && sel.Builder == nil {
			err = fmt.Errorf("no builder chosen")
		}
		return took, err
	}

	fmt.Printf("\n| builder selection (`builder.Select` with `dockhand-cloud probe`, mTLS, probe_timeout %s) | runs | median | p90 | max | bar |\n|---|---|---|---|---|---|\n", cfg.ProbeTimeout)
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
		ds, err := sortedRuns(c.runs, selectOnce)
		if err != nil {
			return false, fmt.Errorf("%s: %w", c.name, err)
		}
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

// selectAsJob runs builder.Select as a new job's bootstrap does: with o's
// settings, in a job dir of its own below o.StateDir holding the job's
// docker config, removed afterwards. It returns the choice and how long
// Select took.
func selectAsJob(o builder.SetupOptions) (*builder.Selection, time.Duration, error) {
	jobs := filepath.Join(o.StateDir, "jobs")
	if err := os.MkdirAll(jobs, 0o700); err != nil {
		return nil, 0, err
	}
	job, err := os.MkdirTemp(jobs, "job-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(job)
	o.JobDir, o.DockerConfig = job, filepath.Join(job, "docker")
	if err := os.Mkdir(o.DockerConfig, 0o700); err != nil {
		return nil, 0, err
	}
	start := time.Now()
	// The benchmark is its own root: no job's cancel to pass on.
	sel, err := builder.Select(context.Background(), o)
	return sel, time.Since(start), err
}

// sortedRuns calls once runs times and returns what each took, sorted.
func sortedRuns(runs int, once func() (time.Duration, error)) ([]time.Duration, error) {
	ds := make([]time.Duration, 0, runs)
	for range runs {
		d, err := once()
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return ds, nil
}
