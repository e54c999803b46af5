package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The setup phases benchmark: trivial jobs (`true`, no checkout) through
// `dockhand bootstrap` with debug on, and the median of each phase the
// job log's debug line gives (bootstrap/phases.go), on the bootstrap
// benchmark's host (state dir only, no builder reachable).

var phasesLine = regexp.MustCompile(`(?m)^dockhand: debug: setup took ([0-9.]+)ms: (.*)$`)

func runPhasesOnly(runs int) error {
	dockhand, toolBin, dir, done, err := setup()
	if err != nil {
		return err
	}
	defer done()
	return phasesBench(dockhand, toolBin, dir, max(runs/10, 20))
}

func phasesBench(dockhand, toolBin, dir string, runs int) error {
	config := filepath.Join(dir, "phases.toml")
	toml := fmt.Sprintf("state_dir = %q\ndebug = true\n", filepath.Join(dir, "phases-state"))
	if err := os.WriteFile(config, []byte(toml), 0o600); err != nil {
		return err
	}
	env := bootstrapEnv(toolBin, dir)
	var order []string
	took := map[string][]time.Duration{}
	add := func(name, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("phase %q: %w", name, err)
		}
		if _, ok := took[name]; !ok {
			order = append(order, name)
		}
		took[name] = append(took[name], d)
		return nil
	}
	for i := range runs + 3 {
		cmd := exec.Command(dockhand, "bootstrap", "--config", config)
		cmd.Env, cmd.Dir = append(env, fmt.Sprintf("BUILDKITE_JOB_ID=phases-%d", i)), dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("job %d: %w\n%s", i, err, out)
		}
		m := phasesLine.FindSubmatch(out)
		if m == nil {
			return fmt.Errorf("job %d: no setup phases line:\n%s", i, out)
		}
		if i < 3 {
			continue // warm caches
		}
		if err := add("setup (all phases)", string(m[1])+"ms"); err != nil {
			return err
		}
		for _, part := range strings.Split(string(m[2]), ", ") {
			for _, ph := range strings.Split(part, " ‖ ") {
				sp := strings.LastIndexByte(ph, ' ')
				if sp < 0 {
					return fmt.Errorf("job %d: phase %q", i, ph)
				}
				name := ph[:sp]
				if strings.Contains(part, " ‖ ") {
					name += " (concurrent)"
				}
				if err := add(name, ph[sp+1:]); err != nil {
					return err
				}
			}
		}
	}
	fmt.Printf("\n| setup phase of `dockhand bootstrap` (`DOCKHAND_DEBUG=1` line, %d trivial jobs) | median | p90 |\n|---|---|---|\n", runs)
	for _, name := range order {
		fmt.Printf("| %s | %s | %s |\n", name, ms(percentile(took[name], 50)), ms(percentile(took[name], 90)))
	}
	return nil
}
