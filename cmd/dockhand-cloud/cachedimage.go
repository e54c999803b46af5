package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/containerd/log"
	"github.com/dockhand-ci/dockhand/cachedimage/build"
	"golang.org/x/sys/unix"
)

// cachedImage is `dockhand-cloud cached-image`, which `dockhand
// cached-image` execs for the registry, ECR and build work.
func cachedImage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// containerd's registry client logs every 404 at info: a missing tag is
	// the expected answer on a cache miss.
	_ = log.SetLevel("warn")
	// Exec'd in the job's place: the job's signals end the build's context.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("finding the working directory: %w", err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	return build.Run(ctx, args, build.Env{
		Environ: os.Environ(), Dir: dir, Machine: unix.ByteSliceToString(u.Machine[:]),
		Stdout: stdout, Stderr: stderr,
	})
}
