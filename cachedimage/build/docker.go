package build

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dockhand-ci/dockhand/cachedimage"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/internal/proc"
)

// cancelGrace is how long the job's docker has, once told to stop (SIGTERM,
// which makes the docker CLI close its plugin's socket so buildx cancels the
// build), before it is killed and dockhand stops waiting for its output.
var cancelGrace = 10 * time.Second

// dockerBuild is the job's `docker buildx build` for the cached image: the
// plugin's docker command, pushing where the plugin would then `docker tag`
// and `docker push`.
type dockerBuild struct {
	File, Context, Target string
	Progress              string   // "" leaves buildx to choose (the live display on a terminal)
	Tags                  []string // IMAGE:TAG, IMAGE:latest
	PlainHTTP             bool     // the registry is on loopback, reached over plain HTTP
	BuildArgs             []string // NAME=value, or NAME for the job's $NAME, as docker takes them
	Secrets               []string // --secret values
	Additional            []string // additional-build-args, as docker receives them from the plugin
}

// args is the docker command line, in the plugin's order (its flags, then
// additional-build-args, then the context), so a flag repeated in
// additional-build-args wins as it does with the plugin.
func (b dockerBuild) args() []string {
	a := []string{"buildx", "build", "--file=" + b.File}
	if b.Progress != "" {
		a = append(a, "--progress="+b.Progress)
	}
	for _, t := range b.Tags {
		a = append(a, "--tag="+t)
	}
	if b.PlainHTTP {
		a = append(a, "--output=type=image,push=true,registry.insecure=true")
	} else {
		a = append(a, "--push")
	}
	if b.Target != "" {
		a = append(a, "--target="+b.Target)
	}
	for _, ba := range b.BuildArgs {
		a = append(a, "--build-arg="+ba)
	}
	for _, s := range b.Secrets {
		a = append(a, "--secret", s)
	}
	a = append(a, b.Additional...)
	return append(a, b.Context)
}

// secretFlag is a secrets item as the plugin hands it to docker: the full
// id=… form as it is, a bare NAME as the variable NAME.
func secretFlag(s cachedimage.Secret) string {
	if strings.HasPrefix(s.Raw, "id=") {
		return s.Raw
	}
	return "id=" + s.ID + ",env=" + s.Env
}

// buildAndPush builds the image with the job's own `docker buildx build`
// (its docker on its PATH, its DOCKER_CONFIG, builder, credential helper and
// buildx shim) and pushes IMAGE:TAG and IMAGE:latest.
func buildAndPush(ctx context.Context, o *cachedimage.Options, e Env, image, tag string) error {
	docker, err := proc.LookPath("docker", e.get("PATH"))
	if err != nil {
		return fmt.Errorf("building %s:%s: docker is not on the job's PATH (dockhand cached-image builds with the job's docker buildx)", image, tag)
	}
	file, contextDir, cleanup, err := sources(o, e.get("TMPDIR"))
	if err != nil {
		return err
	}
	defer cleanup()
	add := o.Additional(e.Dir, e.Environ)
	log := joblog.New(e.Stderr)
	for _, n := range add.Notes {
		log.Printf("additional-build-args: %s", n)
	}
	insecure, _ := plainHTTP(strings.SplitN(image, "/", 2)[0])
	b := dockerBuild{
		File: file, Context: contextDir, Target: o.Target, Progress: progress(o.Progress, e),
		Tags: []string{image + ":" + tag, image + ":latest"}, PlainHTTP: insecure,
		BuildArgs: o.BuildArgs, Additional: add.Words,
	}
	for _, s := range o.Secrets {
		b.Secrets = append(b.Secrets, secretFlag(s))
	}
	args := b.args()
	log.Printf("running docker %s", displayArgs(args))
	cmd := exec.CommandContext(ctx, docker, args...)
	cmd.Dir, cmd.Env = e.Dir, e.Environ
	// docker's own output is progress too: stdout stays for the variables.
	cmd.Stdout, cmd.Stderr = e.Stderr, e.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = cancelGrace
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("building %s:%s: docker buildx build: %w", image, tag, err)
	}
	return nil
}

// progress is the --progress to give buildx: the option when set, plain in
// a Buildkite job (its log cannot redraw, as the plugin's --progress=plain),
// else buildx's own choice.
func progress(flag string, e Env) string {
	if flag == "" && e.get("BUILDKITE_JOB_ID") != "" {
		return "plain"
	}
	return flag
}

// sources are the --file and the context as the plugin passes them,
// relative to the checkout: dockerfile-inline goes into a private
// temporary directory (under tmpDir, "" for the system's) with the context
// "."; else the context is the Dockerfile's directory; the context option
// overrides both.
func sources(o *cachedimage.Options, tmpDir string) (file, contextDir string, cleanup func(), err error) {
	cleanup = func() {}
	if o.DockerfileInline != "" {
		tmp, err := os.MkdirTemp(tmpDir, "dockhand-dockerfile-")
		if err != nil {
			return "", "", cleanup, fmt.Errorf("dockerfile-inline: %w", err)
		}
		cleanup = func() { os.RemoveAll(tmp) }
		file, contextDir = filepath.Join(tmp, "Dockerfile"), "."
		if err := os.WriteFile(file, []byte(o.DockerfileInline+"\n"), 0o600); err != nil {
			return "", "", cleanup, fmt.Errorf("dockerfile-inline: %w", err)
		}
	} else {
		file = o.Dockerfile
		if file == "" {
			file = "Dockerfile"
		}
		contextDir = filepath.Dir(file)
	}
	if o.Context != "" {
		contextDir = o.Context
	}
	return file, contextDir, cleanup, nil
}

// displayArgs joins args for the log, quoting the words a shell would split.
func displayArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
