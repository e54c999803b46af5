// Package build is the registry and build half of `dockhand cached-image`,
// run as `dockhand-cloud cached-image`: it finds the checksum-tagged image in
// its registry (a manifest HEAD through the job's docker credentials) or
// builds it with the job's own `docker buildx build` (its builder, docker
// config and credential helper) and pushes :TAG and :latest; on ECR it
// creates the repository and applies the lifecycle policy; then it exports
// the image to the job through the Job API. It links containerd's registry
// client and aws-sdk-go-v2, so only cmd/dockhand-cloud imports it.
package build

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/cachedimage"
	"github.com/dockhand-ci/dockhand/cachedimage/jqeval"
	"github.com/dockhand-ci/dockhand/internal/joblog"
)

// Env is what one run needs from the process, as data.
type Env struct {
	Environ []string
	Dir     string // the working directory (the job's checkout)
	Machine string // uname -m
	Stdout  io.Writer
	Stderr  io.Writer // the build progress goes here; a terminal gets the live display
}

func (e Env) get(k string) string {
	v := ""
	for _, kv := range e.Environ {
		if name, val, ok := strings.Cut(kv, "="); ok && name == k {
			v = val
		}
	}
	return v
}

// Run is `dockhand-cloud cached-image ARGS`: the options as `dockhand
// cached-image` takes them, plus --tag when dockhand already computed it.
func Run(ctx context.Context, args []string, e Env) error {
	o, err := cachedimage.Parse(args, e.Environ)
	if errors.Is(err, flag.ErrHelp) {
		cachedimage.Usage(e.Stdout)
		return nil
	}
	if err != nil {
		return err
	}
	warn := joblog.Named(e.Stderr, "dockhand cached-image").Warnf
	log := joblog.New(e.Stderr)
	tag := o.Tag
	if tag != "" && o.PrintTag {
		_, err := fmt.Fprintln(e.Stdout, tag)
		return err
	}
	if tag == "" {
		// dockhand left the tag to us: a jq filter needs gojq.
		for _, w := range o.Warnings {
			warn("%s", w)
		}
		in := o.TagInput(e.Dir, e.Machine, e.Environ)
		in.JQ = jqeval.Eval
		r, err := cachedimage.ComputeTag(in)
		if err != nil {
			return err
		}
		if done, err := o.ShowTag(r, func(w string) { warn("%s", w) }, e.Stderr, e.Stdout); done || err != nil {
			return err
		}
		tag = r.Tag
	}
	// skip-pull-from-cache needs nothing: the plugin's flag skips a
	// `docker pull`, and dockhand never pulls.

	start := time.Now()
	image, err := imageName(ctx, o, warn)
	if err != nil {
		return err
	}
	ref := image + ":" + tag
	log = log.Section(":docker: cached-image " + ref)
	creds, err := loadCredentials(e.get("DOCKER_CONFIG"))
	if err != nil {
		return err
	}
	found, err := manifestExists(ctx, ref, creds)
	if err != nil {
		return fmt.Errorf("checking %s in the registry: %w", ref, err)
	}
	if found {
		log.Printf("%s is in the registry: nothing to build (%s)", ref, since(start))
	} else {
		log.Printf("%s is not in the registry: building it", ref)
		if err := buildAndPush(ctx, o, e, image, tag); err != nil {
			return err
		}
		log.Printf("built and pushed %s and %s:latest (%s)", ref, image, since(start))
	}
	return export(ctx, e, o, image, tag, warn)
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

// imageName is the image without its tag: gcr's from the options, ECR's
// from the ECR API (creating the repository when missing).
func imageName(ctx context.Context, o *cachedimage.Options, warn func(string, ...any)) (string, error) {
	if o.RegistryProvider == "gcr" {
		return o.GCRImage()
	}
	name, err := o.RepositoryName()
	if err != nil {
		return "", err
	}
	return ensureECR(ctx, o, name, warn)
}

// export sets the image variables in the job through the Job API, so later
// hooks and plugins see them, and prints them.
func export(ctx context.Context, e Env, o *cachedimage.Options, image, tag string, warn func(string, ...any)) error {
	vars := []struct{ k, v string }{
		{o.ExportEnvVariable, image + ":" + tag},
		{cachedimage.ExportImageVar, image},
		{cachedimage.ExportTagVar, tag},
	}
	m := map[string]string{}
	for _, kv := range vars {
		m[kv.k] = kv.v
	}
	sock, token := e.get("BUILDKITE_AGENT_JOB_API_SOCKET"), e.get("BUILDKITE_AGENT_JOB_API_TOKEN")
	switch {
	case sock == "" || token == "":
		warn("no Job API here (BUILDKITE_AGENT_JOB_API_SOCKET or _TOKEN is unset): the variables are printed, not exported")
	default:
		if err := jobAPISetEnv(ctx, sock, token, m); err != nil {
			return fmt.Errorf("exporting the image variables through the Job API: %w", err)
		}
	}
	for _, kv := range vars {
		fmt.Fprintf(e.Stdout, "%s=%s\n", kv.k, kv.v)
	}
	return nil
}
