package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/fleet/certs"
)

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// errUsage marks a bad invocation of `dockhand certs`.
var errUsage = errors.New("usage")

// certsCommand is `dockhand certs` (dockhand execs it here, as crypto/x509
// and its keys are not worth their start-up cost in the job-path binary): the
// mTLS files of a remote buildkitd fleet, for the builder AMI (server) and
// the agents (client), from one CA kept in the same directory.
func certsCommand(_ context.Context, args []string, stdout, stderr io.Writer) error {
	f := flag.NewFlagSet("dockhand certs", flag.ContinueOnError)
	f.SetOutput(stderr)
	dir := f.String("dir", "", "directory to write into (created 0700); a ca.pem and ca-key.pem there are reused")
	var sans, clients listFlag
	f.Var(&sans, "server-san", "DNS name or IP address agents dial the builders by (repeatable, or comma-separated); writes server.pem and server-key.pem")
	f.Var(&clients, "client", "client certificate NAME (repeatable, or comma-separated); writes NAME.pem and NAME-key.pem")
	days := f.Int("days", 825, "validity of the server and client certificates, in days")
	force := f.Bool("force", false, "replace server and client files that already exist")
	f.Usage = func() {
		fmt.Fprint(stdout, "Usage: dockhand certs [flags]\n\nWrite mTLS certificates for a remote buildkitd fleet: a CA, a server and agent clients.\n\nFlags:\n")
		f.SetOutput(stdout)
		f.PrintDefaults()
		f.SetOutput(stderr)
	}
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	switch {
	case f.NArg() > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, f.Arg(0))
	case *dir == "":
		return fmt.Errorf("%w: --dir is required", errUsage)
	case len(sans) == 0 && len(clients) == 0:
		return fmt.Errorf("%w: give --server-san, --client, or both", errUsage)
	case *days < 1:
		return fmt.Errorf("%w: --days %d: must be at least 1", errUsage, *days)
	}
	written, err := certs.WriteDir(certs.WriteOptions{
		Dir: *dir, ServerSANs: sans, Clients: clients, Force: *force,
		Validity: time.Duration(*days) * 24 * time.Hour, Now: time.Now(),
	})
	for _, p := range written {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	return err
}
