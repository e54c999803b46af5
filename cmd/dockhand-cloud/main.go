// Command dockhand-cloud is the half of dockhand that talks to builders and
// cloud control planes: BuildKit probes (the BuildKit Go client), AWS ECR
// (aws-sdk-go-v2), Namespace and image builds. Its libraries cost several
// milliseconds of start-up, so it is kept out of the `dockhand` binary whose
// job-path modes (shell, buildx shim, credential helper) must start in about
// a millisecond; `dockhand` runs it as a child when a job needs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dockhand-ci/dockhand/cloud"
)

// version is set at link time by `make build`.
var version = "dev"

func main() {
	// The root of every command. dockhand runs the request-and-reply ones
	// as children it kills when its own context ends (internal/proc.Run),
	// so they catch no signal; cached-image, exec'd in the job's place,
	// makes its own from the job's signals.
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// commands maps each subcommand (package cloud names them and their
// requests) to its implementation: the one table dockhand-cloud dispatches
// through.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	cloud.Probe:        probeCommand,
	cloud.FleetEC2:     fleetEC2,
	cloud.History:      historyCommand,
	cloud.ECRToken:     ecrToken,
	cloud.ECRCacheRepo: ecrCacheRepo,
	cloud.CachedImage:  cachedImage,
	cloud.Certs:        certsCommand,
	cloud.Version: func(_ context.Context, _ []string, stdout, _ io.Writer) error {
		_, err := fmt.Fprintf(stdout, "dockhand-cloud %s\n", version)
		return err
	},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || commands[args[0]] == nil {
		fmt.Fprintln(stderr, "usage: dockhand-cloud COMMAND (run by dockhand; not meant to be called by hand)")
		return 2
	}
	if err := commands[args[0]](ctx, args[1:], stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "dockhand %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}
