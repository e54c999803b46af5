// Package bootstrap is the job lifecycle around `buildkite-agent bootstrap`:
// the job's private directory and docker config, the child bootstrap, the
// signals of a cancelled job, cleanup after every hook, the sweep of dirs
// left by dead jobs, and the job shell wrapper.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/internal/proc"
	"github.com/dockhand-ci/dockhand/jobstate"
	"github.com/dockhand-ci/dockhand/registry"
	"github.com/dockhand-ci/dockhand/shim"
)

// Variables the bootstrap exports to the job.
const (
	JobDirVar       = registry.JobDirVar // DOCKHAND_JOB_DIR
	DockerConfigVar = "DOCKER_CONFIG"
)

// Options are what one bootstrap needs; everything comes in as data.
type Options struct {
	Env    *agentenv.Environment // the environment the agent gave the bootstrap
	Config *config.Config
	Self   string    // the dockhand executable
	Log    io.Writer // the job log (stdout, the agent's PTY)
	UID    int
	// Signals receives the signals sent to the bootstrap (SIGTERM, SIGINT,
	// SIGHUP, SIGQUIT), caught by the caller before anything else runs.
	Signals <-chan os.Signal
}

// Exit is how the child bootstrap ended: an exit code, or a signal.
type Exit struct {
	Code   int
	Signal syscall.Signal
}

// SetupError is a failure of dockhand's own preparation, before the job ran.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// Run prepares the job, runs the real `buildkite-agent bootstrap` as a child
// with dockhand's exports, and cleans up after it. It survives SIGTERM: the
// agent signals the whole process group, so the child gets the signal itself,
// and Run waits for it, cleans up within the grace period and reports how the
// child ended so the caller can end the same way.
func Run(o Options) (Exit, error) {
	start := time.Now()
	sigs := o.Signals

	// One context for all of setup, ended by the agent's cancel signal:
	// every wait in it (locks, probes, builder starts) gives up at once.
	ctx, endSetup := watchSignals(sigs)
	job, notes, err := prepare(ctx, o)
	setupSignal := endSetup()
	// Whatever way Run ends, the token refresh ends with it; after a job
	// it ran to its end, it is given refreshExitWait first (below).
	defer notes.refresh.stop(0)
	if err != nil {
		if setupSignal != 0 {
			// Cancelled before the job started: end as a cancelled
			// bootstrap would, with nothing to clean up.
			return Exit{Signal: setupSignal}, nil
		}
		return Exit{}, &SetupError{err}
	}
	grace := GracePeriod(o.Env)
	var signalled time.Time
	defer func() {
		deadline := 30 * time.Second
		if !signalled.IsZero() {
			deadline = max(time.Until(signalled.Add(grace-time.Second)), 0)
		}
		if err := cleanupWithin(job.Remove, deadline); err != nil {
			joblog.New(o.Log).Printf("cleanup: %v (the next job on this host finishes it)", err)
		}
	}()

	childEnv := exports(o.Env, job.Path, notes.realBuildx)
	setBuilderEnv(childEnv, notes.builder)
	agent, err := proc.FindAgent(childEnv)
	if err != nil {
		return Exit{}, &SetupError{err}
	}
	setupTook := time.Since(start)
	writeSection(o.Log, job.Path, notes, setupTook)

	// A signal during setup: the job never starts, and dockhand ends as a
	// cancelled bootstrap would.
	if setupSignal != 0 {
		return Exit{Signal: setupSignal}, nil
	}
	select {
	case s := <-sigs:
		return Exit{Signal: s.(syscall.Signal)}, nil
	default:
	}
	// The job's gets must find the due tokens claimed, so they wait for
	// their refresh rather than fetch them too.
	notes.refresh.waitClaimed()

	cmd := exec.Command(agent, "bootstrap")
	cmd.Env = childEnv.ToSlice()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Should dockhand be SIGKILLed, the job must not run on unowned: the
	// child gets SIGTERM, as on a cancel (the kernel may send it again as
	// each dying thread it is handed to ends), and it and everything it starts
	// hold the job dir's lock (fd 3, inherited), so no other job sweeps the
	// dir while any of them lives.
	cmd.ExtraFiles = []*os.File{job.lock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	done, err := startLocked(cmd)
	if err != nil {
		return Exit{}, &SetupError{fmt.Errorf("starting %s bootstrap: %w", agent, err)}
	}
	signalled, err = waitChild(done, sigs, func() time.Time {
		return reportWithin(o.Log, grace, sigs, func(ctx context.Context) { afterJob(ctx, o, job.Path, notes, start, setupTook) })
	})
	if signalled.IsZero() {
		// After the job's report, so a refresh still running has had that
		// time too.
		if line := notes.refresh.stop(refreshExitWait); line != "" && notes.debug {
			joblog.New(o.Log).Printf("%s", line)
		}
	}
	return exitOf(cmd, err)
}

// waitChild waits for the child to end (done) and runs report after a job
// that ran to its end, returning when the first signal came (zero: none; report says whether one came during it) and the child's result. The
// agent signals the whole group, so the child has every signal too; one
// that came by the time the child ended wins over the end: a cancelled job
// gets no report, whichever of the two this process notices first.
func waitChild(done <-chan error, sigs <-chan os.Signal, report func() time.Time) (time.Time, error) {
	var signalled time.Time
	for {
		select {
		case <-sigs:
			// Note when, to bound our own cleanup by the grace period.
			if signalled.IsZero() {
				signalled = time.Now()
			}
		case err := <-done:
			select {
			case <-sigs:
				if signalled.IsZero() {
					signalled = time.Now()
				}
			default:
			}
			if signalled.IsZero() {
				signalled = report()
			}
			return signalled, err
		}
	}
}

// reportWithin runs report, the job-end report, for at most the grace
// period (at least a second): nothing in it may keep the bootstrap from
// ending with the job's status, whatever the job left behind. A signal ends
// the wait at once and is returned as its time (zero: none came). Either
// ends report's ctx, so what it still waits for (the builder's history, the
// annotation, a lock) gives up while the bootstrap cleans up.
func reportWithin(log io.Writer, grace time.Duration, sigs <-chan os.Signal, report func(ctx context.Context)) (signalled time.Time) {
	grace = max(grace, time.Second)
	// The report's root: setup's context ended when the job started, and
	// this one ends with the bootstrap's next signal or the grace period.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		report(ctx)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-sigs:
		return time.Now()
	case <-t.C:
		joblog.New(log).Printf("job report: not finished within %s, the grace period (the job is not affected)", grace)
	}
	return time.Time{}
}

// startLocked starts cmd from an OS thread that lives until cmd ends: the
// kernel sends Pdeathsig when the thread that forked the child exits, not
// the process, and the Go runtime may end an idle thread. done gets Wait's
// result.
func startLocked(cmd *exec.Cmd) (done <-chan error, err error) {
	started, ended := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine, after the child
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		ended <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return ended, nil
}

// watchSignals returns a context that ends when a signal arrives on sigs,
// and the func that stops watching and says which signal ended it (0: none).
// After it, sigs is the caller's again.
func watchSignals(sigs <-chan os.Signal) (context.Context, func() syscall.Signal) {
	ctx, cancel := context.WithCancel(context.Background())
	var got syscall.Signal
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-sigs:
			got, _ = s.(syscall.Signal)
			cancel()
		case <-quit:
		}
	}()
	return ctx, func() syscall.Signal {
		close(quit)
		<-done
		cancel()
		return got
	}
}

// exitOf turns the child's end into an Exit.
func exitOf(cmd *exec.Cmd, err error) (Exit, error) {
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return Exit{}, &SetupError{fmt.Errorf("waiting for the bootstrap: %w", err)}
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return Exit{Signal: ws.Signal()}, nil
	}
	return Exit{Code: cmd.ProcessState.ExitCode()}, nil
}

// setupNotes are what preparation found, for the job log.
type setupNotes struct {
	wanted     string // the configured state dir
	stateDir   string
	fellBack   error
	swept      []string
	sweepErr   error // what the sweep could not remove
	realBuildx string
	userConfig error
	cache      []joblog.Line // the cache lines of the job log section
	nodeID     joblog.Line   // the buildx node identity's line
	hostStore  string        // the line on a host-level BUILDX_CONFIG, if any
	storeErr   error         // copying that store's builders failed
	phases     *phases       // how long each step of the setup took
	debug      bool          // DOCKHAND_DEBUG: print the phases
	settings   *jobstate.CacheSettings
	ecrCalls   int // ECR API requests made while preparing

	builder    *builder.Selection // the builder choice
	builderMsg *joblog.Line       // a warning about it, if any

	refresh *tokenRefresh // the ECR token refresh beside the job, nil when off
}

// prepare sweeps dead jobs' dirs and creates this job's dir and docker config.
// ctx ends with the job's cancel signal. When the state dir's disk fills up
// under it, it starts again in the private dir under TMPDIR.
func prepare(ctx context.Context, o Options) (*JobDir, setupNotes, error) {
	tmpdir, _ := o.Env.Get("TMPDIR")
	state, fellBack, err := StateDir(o.Config.StateDir, tmpdir, o.UID)
	if err != nil {
		return nil, setupNotes{}, err
	}
	refresh := startTokenRefresh(o, state)
	job, n, err := prepareIn(ctx, o, state)
	// A full disk, or what another user (root, by hand or in an earlier
	// install) left in the state dir: the job goes on in the private dir.
	if err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, fs.ErrPermission)) && fellBack == nil {
		fellBack = err
		if errors.Is(err, fs.ErrPermission) {
			fellBack = fmt.Errorf("%w (fix: chown -R %d %s, as install-dockhand.sh --user does)", err, o.UID, state)
		}
		if state, _, err = StateDir("", tmpdir, o.UID); err == nil {
			// The job's gets will use the private dir's token cache.
			refresh.stop(0)
			refresh = startTokenRefresh(o, state)
			job, n, err = prepareIn(ctx, o, state)
		}
	}
	n.wanted, n.fellBack, n.refresh = o.Config.StateDir, fellBack, refresh
	return job, n, err
}

// prepareIn is prepare in the state dir state.
func prepareIn(ctx context.Context, o Options, state string) (*JobDir, setupNotes, error) {
	n := setupNotes{stateDir: state, phases: newPhases(time.Now()), debug: o.Config.Debug}
	var err error
	// A dead job's dir that cannot be removed costs room, not this job.
	n.swept, n.sweepErr = Sweep(ctx, state)
	n.phases.mark("sweep", time.Now())
	jobID, _ := o.Env.Get("BUILDKITE_JOB_ID")
	job, err := CreateJobDir(ctx, state, jobID)
	if err != nil {
		return nil, n, err
	}
	n.phases.mark("job dir", time.Now())
	fail := func(err error) (*JobDir, setupNotes, error) {
		job.Remove()
		return nil, n, err
	}
	userDir := userDockerDir(o.Env)
	user, err := readUserDockerConfig(userDir)
	if err != nil {
		n.userConfig = err // a broken user config only loses its settings
	}
	user.PluginDirs = user.ExtraDirs
	if userDir != "" {
		user.PluginDirs = append(slices.Clone(user.ExtraDirs), filepath.Join(userDir, "cli-plugins"))
	}
	if err := SeedDockerConfig(filepath.Join(job.Path, "docker"), user, jobCredentials(o.Config), o.Self); err != nil {
		return fail(err)
	}
	bin := filepath.Join(job.Path, "bin")
	if err := os.Mkdir(bin, 0o700); err != nil {
		return fail(err)
	}
	// dockhand itself (for hooks) and its credential helper name, found on
	// the job's PATH whatever the host's PATH holds.
	for _, name := range []string{"dockhand", "docker-credential-" + CredsStore} {
		if err := os.Symlink(o.Self, filepath.Join(bin, name)); err != nil {
			return fail(err)
		}
	}
	n.hostStore, n.storeErr = adoptHostStore(o.Env, filepath.Join(job.Path, "docker", "buildx"))
	n.realBuildx = buildx.FindReal(buildx.PluginDirs(user.ExtraDirs, userDir), o.Self)
	n.phases.mark("docker config", time.Now())
	n.nodeID = seedNodeIdentity(ctx, state, filepath.Join(job.Path, "docker", "buildx"), o.Env)
	n.phases.mark("node identity", time.Now())
	settings := RegistrySettings(o.Config)
	st := jobstate.State{ConfigPath: o.Config.Path, Shell: o.Config.Shell, RealBuildx: n.realBuildx,
		Registry: &settings, Debug: o.Config.Debug}
	// The cache's setup (the ECR repository check, the local cache's
	// pruning) runs beside the builder choice (its probes).
	cacheDone := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		ensure := ecrRepoEnsurer(ctx, state, cloud.Path(o.Self), o.Env, time.Now)
		st.Cache, n.cache = prepareCache(o.Config, o.Env, start, func(repo string, days int) (repoState, error) {
			rs, err := ensure(repo, days)
			if rs.Asked || err != nil { // else the host knew it
				n.ecrCalls++
			}
			return rs, err
		})
		n.settings = st.Cache
		cacheDone <- time.Since(start)
	}()
	n.builder, st.Builder, n.builderMsg, err = chooseBuilder(ctx, o, state, job.Path)
	cacheTook := <-cacheDone
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err) // cancelled: the builder may have been passed over for it
	}
	n.phases.markBeside("builder", "cache", cacheTook, time.Now())
	if n.builder != nil {
		settings.NSCTokenFile = n.builder.NamespaceToken
	}
	if err := jobstate.Write(job.Path, st); err != nil {
		return fail(err)
	}
	n.phases.mark("job state", time.Now())
	return job, n, nil
}

// userDockerDir is the agent user's own docker config dir.
func userDockerDir(e *agentenv.Environment) string {
	if d, ok := e.Get(DockerConfigVar); ok && d != "" {
		return d
	}
	if home, ok := e.Get("HOME"); ok && home != "" {
		return filepath.Join(home, ".docker")
	}
	return ""
}

// exports returns the child's environment: the job's plus dockhand's.
func exports(e *agentenv.Environment, jobDir, realBuildx string) *agentenv.Environment {
	out := e.Copy()
	out.Set(DockerConfigVar, filepath.Join(jobDir, "docker"))
	out.Set(JobDirVar, jobDir)
	if realBuildx != "" {
		out.Set(shim.RealPluginVar, realBuildx)
	}
	if host, _ := e.Get(BuildxConfigVar); host != "" {
		// A host-level store: the job's own holds dockhand's builder
		// (adoptHostStore seeded it with the host's builders).
		out.Set(BuildxConfigVar, filepath.Join(jobDir, "docker", "buildx"))
	}
	path, _ := e.Get("PATH")
	out.Set("PATH", filepath.Join(jobDir, "bin")+string(os.PathListSeparator)+path)
	return out
}

// GracePeriod is how long the agent waits between its signal and SIGKILL:
// BUILDKITE_SIGNAL_GRACE_PERIOD_SECONDS (v3, resolved by the agent), else
// BUILDKITE_CANCEL_SIGNAL_TIMEOUT (v4, a Go duration), else the cancel grace
// period less one second, else the agent's default of 9s.
func GracePeriod(e *agentenv.Environment) time.Duration {
	if v, ok := e.Get("BUILDKITE_SIGNAL_GRACE_PERIOD_SECONDS"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
	}
	if v, ok := e.Get("BUILDKITE_CANCEL_SIGNAL_TIMEOUT"); ok {
		if d, err := time.ParseDuration(strings.TrimSpace(v)); err == nil && d >= 0 {
			return d
		}
	}
	if v, ok := e.Get("BUILDKITE_CANCEL_GRACE_PERIOD"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 1 {
			return time.Duration(n-1) * time.Second
		}
	}
	return 9 * time.Second
}

// cleanupWithin runs fn, giving up waiting after d so dockhand still ends
// before the agent's SIGKILL; what is left is swept by the next job.
func cleanupWithin(fn func() error, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("not finished within %s", d)
	}
}

// writeSection prints the job log's dockhand section: collapsed, expanded
// by its first warning.
func writeSection(log io.Writer, jobDir string, n setupNotes, took time.Duration) {
	w := joblog.New(log).Section(":docker: dockhand")
	if n.fellBack != nil {
		w.Warnf("state dir %s not usable (%v); using %s", n.wanted, n.fellBack, n.stateDir)
	}
	if len(n.swept) > 0 {
		w.Printf("removed %d job dir(s) left by dead jobs", len(n.swept))
	}
	if n.sweepErr != nil {
		w.Warnf("dead jobs' dirs left in place: %v", n.sweepErr)
	}
	w.Printf("job dir %s", jobDir)
	w.Printf("DOCKER_CONFIG=%s (credential helper %s; job-scoped docker login)", filepath.Join(jobDir, "docker"), CredsStore)
	if n.realBuildx != "" {
		w.Printf("buildx shim in front of %s", n.realBuildx)
	} else {
		w.Warnf("no docker-buildx plugin found in %s", strings.Join(buildx.SystemPluginDirs, ", "))
	}
	w.Print(n.cache...)
	if n.nodeID.Text != "" {
		w.Print(n.nodeID)
	}
	if n.hostStore != "" {
		w.Printf("%s", n.hostStore)
	}
	if n.storeErr != nil {
		w.Warnf("%v; the job's own store has dockhand's builder only", n.storeErr)
	}
	w.Print(builderLines(n.builder, n.builderMsg)...)
	if n.userConfig != nil {
		w.Warnf("ignoring the agent user's docker config: %v", n.userConfig)
	}
	w.Printf("ready in %s", took.Round(time.Millisecond))
	if n.debug && n.phases != nil {
		w.Printf("%s", n.phases.line())
	}
}
