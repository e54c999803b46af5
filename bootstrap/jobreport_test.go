package bootstrap

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/filelock"
	"github.com/dockhand-ci/dockhand/report"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestIssue23_3_JobEndReportBoundedByGracePeriod: the job's command has
// ended well, and something in the report after it blocks (here the
// metrics log is a FIFO no one reads; before, a FIFO the job put under
// buildx/refs did the same). The bootstrap still ends, with the job's exit
// status, once the grace period has passed, and says the report was cut
// short; before, it waited until the agent killed the job at its timeout.
func TestIssue23_3_JobEndReportBoundedByGracePeriod(t *testing.T) {
	root := t.TempDir()
	state, bin := filepath.Join(root, "state"), filepath.Join(root, "bin")
	os.Mkdir(state, 0o700)
	os.Mkdir(bin, 0o700)
	fifo := filepath.Join(state, report.MetricsFile)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader, at the end, lets a writer still blocked on the FIFO go.
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			time.AfterFunc(time.Second, func() { f.Close() })
		}
	})
	// The real bootstrap's stand-in: the job puts a FIFO where buildx
	// keeps its records, and succeeds.
	os.WriteFile(filepath.Join(bin, "buildkite-agent"), []byte(`#!/bin/sh
mkdir -p "$DOCKHAND_JOB_DIR/docker/buildx/refs/b/node0" && mkfifo "$DOCKHAND_JOB_DIR/docker/buildx/refs/b/node0/ref" || exit 3
exit 0
`), 0o700)
	cfg := config.Default("")
	cfg.StateDir, cfg.Builders, cfg.Cache.Mode = state, nil, config.CacheOff
	var log harness.LockedBuffer // a report still running after Run has returned may write to it
	got := make(chan runResult, 1)
	go func() {
		exit, err := Run(Options{Env: agentenv.FromMap(map[string]string{"BUILDKITE_JOB_ID": "j1", "PATH": bin + ":/usr/bin:/bin",
			"BUILDKITE_SIGNAL_GRACE_PERIOD_SECONDS": "1"}),
			Config: cfg, Self: filepath.Join(bin, "dockhand"), Log: &log, UID: os.Getuid()})
		got <- runResult{exit, err}
	}()
	select {
	case r := <-got:
		if r.err != nil || r.exit.Code != 0 || r.exit.Signal != 0 {
			t.Errorf("Run = %+v, %v; want the job's own exit 0", r.exit, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the bootstrap had not ended 30s after the job's command did (grace period 1s)")
	}
	if !strings.Contains(log.String(), "job report: not finished within 1s") {
		t.Errorf("the log does not say the report was cut short:\n%s", log.String())
	}
}

// The agent's signal during the job-end report ends what the report still
// waits for (its context), not only the bootstrap's wait for it: here the
// metrics log's lock, which another job holds. Before, the report's waits
// ran on context.Background() and outlived the signal.
func TestSignalEndsTheJobEndReportsWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), report.MetricsFile)
	release, err := filelock.Lock(t.Context(), path+".lock", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	sigs := make(chan os.Signal, 1)
	waiting, ended := make(chan struct{}), make(chan error, 1)
	go reportWithin(io.Discard, time.Hour, sigs, func(ctx context.Context) {
		close(waiting)
		ended <- report.AppendMetrics(ctx, path, []byte("{}"), report.MaxMetricsSize)
	})
	<-waiting
	sigs <- syscall.SIGTERM
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the report's wait ended with %v, want its context cancelled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the report still waits after the signal")
	}
}
