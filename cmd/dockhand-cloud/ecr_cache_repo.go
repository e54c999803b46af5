package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/dockhand-ci/dockhand/buildx/ecrcache"
)

// ecrCacheRepo is `dockhand-cloud ecr-cache-repo --repository HOST/NAME
// --max-age-days N`: the registry cache backend's ECR repository, created
// if missing, with its lifecycle policy. It prints "created" or "exists".
func ecrCacheRepo(args []string, stdout, stderr io.Writer) error {
	f := flag.NewFlagSet("dockhand-cloud "+ecrcache.Command, flag.ContinueOnError)
	f.SetOutput(stderr)
	repo := f.String("repository", "", "the cache repository, ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME")
	days := f.Int("max-age-days", 14, "expire cache refs not written for this many days")
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", f.Arg(0))
	}
	created, err := ecrcache.Ensure(context.Background(), *repo, *days)
	if err != nil {
		return err
	}
	if created {
		_, err = fmt.Fprintln(stdout, "created")
	} else {
		_, err = fmt.Fprintln(stdout, "exists")
	}
	return err
}
