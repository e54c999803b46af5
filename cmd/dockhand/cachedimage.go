package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/cachedimage"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"golang.org/x/sys/unix"
)

// cachedImage is `dockhand cached-image`: it reads the options and computes
// the tag here (no network, fast), prints it for --print-tag, and otherwise
// execs `dockhand-cloud cached-image` with the same arguments and the tag
// for the registry, ECR and build work. A cache-on jq filter beyond the
// subset evaluated here makes dockhand-cloud (which links gojq) compute the
// tag itself, --print-tag included.
func cachedImage(args []string, e *agentenv.Environment, io stdio) error {
	environ := e.ToSlice()
	o, err := cachedimage.Parse(args, environ)
	if errors.Is(err, flag.ErrHelp) {
		cachedimage.Usage(io.out)
		return errHelp
	}
	if err != nil {
		return usageError{err.Error()}
	}
	dir, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("finding the working directory: %w", err)
	}
	r, err := cachedimage.ComputeTag(o.TagInput(dir, unameMachine(), environ))
	if errors.Is(err, cachedimage.ErrFullJQ) {
		// dockhand-cloud parses the options again and prints their warnings.
		return cloud.Exec(cloudBinary(), cloud.CachedImage, args, environ)
	}
	warn := func(msg string) { joblog.Named(io.err, "dockhand cached-image").Warnf("%s", msg) }
	for _, w := range o.Warnings {
		warn(w)
	}
	if err != nil {
		return err
	}
	if done, err := o.ShowTag(r, warn, io.err, io.out); done || err != nil {
		return err
	}
	return cloud.Exec(cloudBinary(), cloud.CachedImage, append(slices.Clone(args), "--tag", r.Tag), environ)
}

// unameMachine is `uname -m`, which the plugin hashes into the tag.
func unameMachine() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Machine[:])
}
