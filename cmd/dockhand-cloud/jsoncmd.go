package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/dockhand-ci/dockhand/cloud"
)

// jsonCommand makes a subcommand that answers one request the cloud
// package's way (cloud.Serve): the request as JSON on stdin, the reply as
// JSON on stdout, a failure as one line on stderr and exit status 1.
func jsonCommand[Req, Resp any](handle func(context.Context, Req) (Resp, error)) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, _ io.Writer) error {
		if len(args) > 0 {
			return fmt.Errorf("unexpected argument %q (the request comes as JSON on stdin)", args[0])
		}
		return cloud.Serve(os.Stdin, stdout, func(req Req) (Resp, error) { return handle(ctx, req) })
	}
}
