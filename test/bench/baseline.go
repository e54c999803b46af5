package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dockhand-ci/dockhand/test/ecrapi"
)

// baselineNoise is how much slower than the baseline a median may be and
// still count as the same speed on this (shared, noisy) machine.
const baselineNoise = 1.10

// runBaselineOnly compares this build's job-path modes with another build
// of dockhand (baseline: its dockhand binary, dockhand-cloud beside it) in
// the same run, alternating: the way to check that a change did not make
// the job path slower, whatever the machine's speed that day.
func runBaselineOnly(runs int, baseline string) error {
	if baseline == "" {
		return fmt.Errorf("-only baseline needs -baseline PATH (another build's dockhand binary)")
	}
	if _, err := os.Stat(baseline); err != nil {
		return fmt.Errorf("-baseline: %w", err)
	}
	dockhand, toolBin, dir, done, err := setup()
	if err != nil {
		return err
	}
	defer done()
	fake, err := ecrapi.Start(ecrapi.Options{Keys: map[string]string{benchKey: benchSecret}, Password: "bench-registry-password"})
	if err != nil {
		return err
	}
	defer fake.Close()

	// side builds one build's half of every pair in a dir of its own.
	type half struct{ shell, bootstrap, shim, get func() error }
	side := func(bin, name string) (half, error) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return half{}, err
		}
		shim, err := shimPair(bin, toolBin, d, runs)
		if err != nil {
			return half{}, err
		}
		ours, _, err := credentialHelpers(bin, toolBin, d, fake)
		if err != nil {
			return half{}, err
		}
		return half{
			shell:     shellPair(bin, d, runs).dockhand,
			bootstrap: bootstrapPair(bin, toolBin, d, runs).dockhand,
			shim:      shim.dockhand,
			get:       ours.get(ours.env(filepath.Join(d, "warm-get"))),
		}, nil
	}
	this, err := side(dockhand, "this")
	if err != nil {
		return err
	}
	base, err := side(baseline, "baseline")
	if err != nil {
		return err
	}

	fmt.Printf("| job-path mode, this build vs the baseline build (%s), %d runs each, alternating | this build (median) | baseline (median) | ratio | within noise (≤ %.2f) |\n|---|---|---|---|---|\n",
		baseline, runs, baselineNoise)
	rows := []struct {
		name       string
		this, base func() error
	}{
		{"`dockhand shell -e -c true`", this.shell, base.shell},
		{"`dockhand bootstrap` (trivial job)", this.bootstrap, base.bootstrap},
		{"`docker buildx version` through the shim", this.shim, base.shim},
		{"`docker-credential-dockhand get`, warm ECR token", this.get, base.get},
	}
	slower := false
	for _, r := range rows {
		t, b, err := measure(pair{runs: runs, dockhand: r.this, plain: r.base})
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		ratio := float64(t) / float64(b)
		verdict := "yes"
		if ratio > baselineNoise {
			verdict, slower = "NO", true
		}
		fmt.Printf("| %s | %s | %s | %.2f | %s |\n", r.name, ms(t), ms(b), ratio, verdict)
	}
	if slower {
		return fmt.Errorf("this build is slower than the baseline beyond noise")
	}
	return nil
}
