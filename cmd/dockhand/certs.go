package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/buildx/certs"
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

// certsCommand is `dockhand certs`: the mTLS files of a remote buildkitd fleet, for
// the builder AMI (server) and the agents (client), from one CA kept in the
// same directory.
func certsCommand(args []string, io stdio) error {
	f := newFlags(modeCerts, "", io)
	dir := f.String("dir", "", "directory to write into (created 0700); a ca.pem and ca-key.pem there are reused")
	var sans, clients listFlag
	f.Var(&sans, "server-san", "DNS name or IP address agents dial the builders by (repeatable, or comma-separated); writes server.pem and server-key.pem")
	f.Var(&clients, "client", "client certificate NAME (repeatable, or comma-separated); writes NAME.pem and NAME-key.pem")
	days := f.Int("days", 825, "validity of the server and client certificates, in days")
	force := f.Bool("force", false, "replace server and client files that already exist")
	if _, err := f.parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{"--dir is required"}
	}
	if len(sans) == 0 && len(clients) == 0 {
		return usageError{"give --server-san, --client, or both"}
	}
	if *days < 1 {
		return usageError{fmt.Sprintf("--days %d: must be at least 1", *days)}
	}
	written, err := certs.WriteDir(certs.WriteOptions{
		Dir: *dir, ServerSANs: sans, Clients: clients, Force: *force,
		Validity: time.Duration(*days) * 24 * time.Hour, Now: time.Now(),
	})
	for _, p := range written {
		fmt.Fprintf(io.out, "wrote %s\n", p)
	}
	return err
}
