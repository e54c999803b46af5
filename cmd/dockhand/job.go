package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/bootstrap"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/jobstate"
	"github.com/dockhand-ci/dockhand/registry"
	"golang.org/x/sys/unix"
)

// childExit carries the job's own exit code out of dispatch unprinted.
type childExit struct{ code int }

func (c childExit) Error() string { return fmt.Sprintf("exit status %d", c.code) }

// protocolError is a credential-helper answer, printed on stdout.
type protocolError struct{ err error }

func (p protocolError) Error() string { return p.err.Error() }

// self is the path of this executable, for the links dockhand puts in a job.
func self() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	p, _ := filepath.Abs(os.Args[0])
	return p
}

// jobConfig loads the configuration for a job. An invalid file must not fail
// a build that would pass without dockhand: the job runs on the built-in
// defaults and the log says why, once.
func jobConfig(path string, e *agentenv.Environment, io stdio) *config.Config {
	cfg, warnings, err := config.Load(config.Options{Flag: path, Env: e})
	log := joblog.New(io.err)
	for _, w := range warnings {
		log.Warnf("%s", w)
	}
	if err != nil {
		log.Warnf("using built-in defaults: %v", err)
		cfg = config.Default(config.Queue(e))
	}
	return cfg
}

func runBootstrap(args []string, e *agentenv.Environment, io stdio) error {
	f := newFlags(modeBootstrap, "", io)
	configPath := f.String("config", "", "configuration file (env DOCKHAND_CONFIG outside a job; default "+config.DefaultPath+")")
	if _, err := f.parse(args); err != nil {
		return err
	}
	// Catch the agent's cancel signal before anything else can be hit by it.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	exit, err := bootstrap.Run(bootstrap.Options{
		Env: e, Config: jobConfig(*configPath, e, io), Self: self(), Log: io.out, UID: os.Getuid(), Signals: sigs,
	})
	if err != nil {
		return err
	}
	if exit.Signal != 0 {
		reraise(exit.Signal)
	}
	if exit.Code != 0 {
		return childExit{exit.Code}
	}
	return nil
}

// reraise ends the process by the signal that ended the child, so the agent
// sees the same result as without dockhand (-1 and the signal's name).
// signal.Reset alone is not enough: for SIGQUIT, SIGABRT, SIGSEGV and the
// like it restores the Go runtime's handler, which prints every goroutine's
// stack into the job log and exits 2. The kernel's default action is set
// instead.
func reraise(sig syscall.Signal) {
	signal.Reset(sig)
	// A zeroed struct sigaction is SIG_DFL with no flags and an empty mask
	// whatever the architecture's layout; 8 is sizeof(sigset_t).
	var act [8]uint64
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	_ = syscall.Kill(os.Getpid(), sig)
	// The default action ends the process; this is only a bound for a signal
	// that does not terminate (it never is: the child died by it).
	time.Sleep(5 * time.Second)
	os.Exit(128 + int(sig))
}

// shell execs the real shell the bootstrap recorded for the job; outside a
// dockhand job, the configured one.
func shell(ctx context.Context, args []string, e *agentenv.Environment, io stdio) error {
	realShell := ""
	if jobDir, _ := e.Get(registry.JobDirVar); jobDir != "" {
		st, err := jobstate.Read(jobDir)
		if err != nil {
			joblog.New(io.err).Warnf("%v", err)
		}
		realShell = st.Shell
	}
	if realShell == "" {
		realShell = jobConfig("", e, io).Shell
	}
	return bootstrap.Shell(ctx, realShell, args, e, io.err)
}

func hook(ctx context.Context, args []string, e *agentenv.Environment, io stdio) error {
	f := newFlags(modeHook, " environment", io)
	if err := f.Parse(args); err != nil {
		if errors.Is(err, errHelp) {
			return errHelp
		}
		return usageError{err.Error()}
	}
	if f.NArg() != 1 || f.Arg(0) != "environment" {
		return usageError{"usage: dockhand hook environment"}
	}
	var out bytes.Buffer
	if err := bootstrap.EnvironmentHook(ctx, e, &out, io.err); err != nil {
		return err
	}
	_, err := io.out.Write(out.Bytes())
	return err
}
