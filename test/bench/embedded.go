package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dockhand-ci/dockhand/builder/embedded"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// The embedded builder as root and as the stack's agent user (uid 2000,
// where buildkitd runs rootless under rootlesskit), side by side: the first
// job on a host, which starts the daemon, and a warm job's setup with the
// daemon up, against the plain `buildkite-agent bootstrap` of the same user.
// Trivial jobs (`true`, no checkout), builders = ["embedded"].

var (
	daemonStarted = regexp.MustCompile(`started the host's buildkitd \(pid \d+\) in ([0-9.]+m?s)`)
	readyIn       = regexp.MustCompile(`(?m)^dockhand: ready in ([0-9.]+m?s)$`)
)

// logged is the duration re finds in out.
func logged(re *regexp.Regexp, out []byte) (time.Duration, error) {
	m := re.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no %q in the job log:\n%s", re, out)
	}
	return time.ParseDuration(string(m[1]))
}

// embeddedSide is one user's host: its dir, state dir and config.
type embeddedSide struct {
	name   string
	user   *harness.User // nil: root
	dir    string
	state  string
	config string
	env    []string
	jobs   int
}

func newEmbeddedSide(name string, u *harness.User, toolBin, dir string) (*embeddedSide, error) {
	s := &embeddedSide{name: name, user: u, dir: dir, state: filepath.Join(dir, "state"), config: filepath.Join(dir, "embedded.toml")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	toml := fmt.Sprintf("state_dir = %q\nbuilders = [\"embedded\"]\n", s.state)
	if err := os.WriteFile(s.config, []byte(toml), 0o600); err != nil {
		return nil, err
	}
	s.env = bootstrapEnv(toolBin, dir)
	if u != nil {
		if err := u.Chown(dir); err != nil {
			return nil, err
		}
		if err := harness.Passable(dir); err != nil {
			return nil, err
		}
		s.env = append(s.env, "USER="+u.Name, "LOGNAME="+u.Name)
	}
	return s, nil
}

// run runs argv as the side's user in a fresh job and returns its output.
func (s *embeddedSide) run(argv ...string) ([]byte, error) {
	s.jobs++
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = append(s.env, fmt.Sprintf("BUILDKITE_JOB_ID=embedded-%s-%d", s.name, s.jobs)), s.dir
	if s.user != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.user.Credential()}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s as %s: %w\n%s", strings.Join(argv, " "), s.name, err, out)
	}
	return out, nil
}

// stop ends the side's daemon and removes its state, as on a fresh host.
func (s *embeddedSide) stop() error {
	if b, err := os.ReadFile(filepath.Join(embedded.Dir(s.state), embedded.PidFile)); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if err := harness.StopPid(pid, 10*time.Second); err != nil {
				return err
			}
		}
	}
	if err := harness.UnmountUnder(s.state); err != nil {
		return err
	}
	return os.RemoveAll(s.state)
}

// firstJob starts the side's daemon afresh in a trivial job: the daemon's
// start as the job log gives it, and the whole bootstrap.
func (s *embeddedSide) firstJob(dockhand string) (start, total time.Duration, err error) {
	if err := s.stop(); err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	out, err := s.run(dockhand, "bootstrap", "--config", s.config)
	total = time.Since(t0)
	if err != nil {
		return 0, 0, err
	}
	start, err = logged(daemonStarted, out)
	return start, total, err
}

func embeddedBench(dockhand, toolBin, dir string, starts, runs int) (failed bool, err error) {
	u, err := harness.StackUser()
	if err != nil {
		return false, err
	}
	for _, p := range []string{dockhand, cloudPath(dockhand), toolBin} {
		if err := harness.Passable(p); err != nil {
			return false, err
		}
	}
	root, err := newEmbeddedSide("root", nil, toolBin, filepath.Join(dir, "emb-root"))
	if err != nil {
		return false, err
	}
	user, err := newEmbeddedSide(fmt.Sprintf("uid %d", u.UID), u, toolBin, filepath.Join(dir, "emb-user"))
	if err != nil {
		return false, err
	}
	sides := []*embeddedSide{root, user}
	defer func() {
		for _, s := range sides {
			if e := s.stop(); e != nil && err == nil {
				err = e
			}
		}
	}()

	type row struct{ start, total, setup, warm, plain time.Duration }
	rows := make([]row, len(sides))
	startTimes, totals := make([][]time.Duration, len(sides)), make([][]time.Duration, len(sides))
	for range starts { // alternating, so both see the same machine
		for i, s := range sides {
			start, total, err := s.firstJob(dockhand)
			if err != nil {
				return false, err
			}
			startTimes[i], totals[i] = append(startTimes[i], start), append(totals[i], total)
		}
	}
	for i, s := range sides {
		rows[i].start, rows[i].total = median(startTimes[i]), median(totals[i])
		// The daemon the last first job started is up: warm jobs, their
		// setup as dockhand's log gives it ("ready in").
		var setups []time.Duration
		warm, plain, err := measure(pair{runs: runs,
			dockhand: func() error {
				out, err := s.run(dockhand, "bootstrap", "--config", s.config)
				if err == nil {
					var d time.Duration
					d, err = logged(readyIn, out)
					setups = append(setups, d)
				}
				return err
			},
			plain: func() error { _, err := s.run(filepath.Join(toolBin, "buildkite-agent"), "bootstrap"); return err },
		})
		if err != nil {
			return false, err
		}
		rows[i].setup, rows[i].warm, rows[i].plain = median(setups), warm, plain
	}

	const bar = 50 * time.Millisecond
	fmt.Printf("\n| embedded builder, builders = [\"embedded\"], trivial job | root | %s (rootless) | %s / root |\n|---|---|---|---|\n", user.name, user.name)
	line := func(what string, f func(row) time.Duration) {
		r, s := f(rows[0]), f(rows[1])
		fmt.Printf("| %s | %s | %s | %.2f |\n", what, ms(r), ms(s), float64(s)/float64(r))
	}
	line(fmt.Sprintf("first job: the daemon's start, as its log says (median of %d)", starts), func(r row) time.Duration { return r.start })
	line(fmt.Sprintf("first job: the whole `dockhand bootstrap` (median of %d)", starts), func(r row) time.Duration { return r.total })
	line(fmt.Sprintf("warm job: dockhand's setup, the daemon up (its log's \"ready in\", median of %d)", runs+3), func(r row) time.Duration { return r.setup })
	line(fmt.Sprintf("warm job: the whole `dockhand bootstrap` (median of %d)", runs), func(r row) time.Duration { return r.warm })
	line(fmt.Sprintf("warm job: plain `buildkite-agent bootstrap`, same user (median of %d)", runs), func(r row) time.Duration { return r.plain })
	line("warm job: the whole bootstrap, added by dockhand", func(r row) time.Duration { return r.warm - r.plain })
	for i, r := range rows {
		verdict := "met"
		if r.setup > bar {
			verdict, failed = "MISSED", true
		}
		fmt.Printf("\nwarm setup as %s: %s; the whole bootstrap %.2f× the plain one (setup ≤ %s: %s)", sides[i].name, ms(r.setup), float64(r.warm)/float64(r.plain), ms(bar), verdict)
	}
	fmt.Println()
	return failed, nil
}

// cloudPath is dockhand-cloud beside dockhand.
func cloudPath(dockhand string) string {
	return filepath.Join(filepath.Dir(dockhand), "dockhand-cloud")
}
