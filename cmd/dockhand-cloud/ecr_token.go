package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/dockhand-ci/dockhand/registry/ecr"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// ecrToken is `dockhand-cloud ecr-token --registry HOST`: one ECR or ECR
// Public token, as registry.ECRTokenReply JSON on stdout (a pipe to the
// credential helper). Nothing secret is taken from argv: the AWS
// credentials come from the environment the SDK's default chain reads.
func ecrToken(args []string, stdout, stderr io.Writer) error {
	f := flag.NewFlagSet("dockhand-cloud ecr-token", flag.ContinueOnError)
	f.SetOutput(stderr)
	host := f.String("registry", "", "the ECR registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com or public.ecr.aws)")
	timeout := f.Duration("timeout", 0, "bound of the whole fetch, retries included (default 30s)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", f.Arg(0))
	}
	reg := hosts.Parse(*host)
	if reg.Kind != hosts.ECR && reg.Kind != hosts.ECRPublic {
		return fmt.Errorf("--registry %q is not an ECR or ECR Public registry host", *host)
	}
	reply, err := ecr.Fetch(context.Background(), reg, ecr.Options{Timeout: *timeout})
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(reply)
}
