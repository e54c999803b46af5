package build

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/cachedimage"
)

func TestSources(t *testing.T) {
	for _, c := range []struct {
		o               cachedimage.Options
		file, contextIs string
	}{
		{cachedimage.Options{}, "Dockerfile", "."},
		{cachedimage.Options{Dockerfile: "docker/Dockerfile.ci"}, "docker/Dockerfile.ci", "docker"},
		{cachedimage.Options{Dockerfile: "docker/Dockerfile.ci", Context: "."}, "docker/Dockerfile.ci", "."},
		{cachedimage.Options{Dockerfile: "/abs/Dockerfile"}, "/abs/Dockerfile", "/abs"},
	} {
		file, ctx, cleanup, err := sources(&c.o, "")
		cleanup()
		if err != nil || file != c.file || ctx != c.contextIs {
			t.Errorf("%+v: %s %s %v", c.o, file, ctx, err)
		}
	}
	tmp := t.TempDir()
	for _, c := range []struct {
		o         cachedimage.Options
		contextIs string
	}{
		{cachedimage.Options{DockerfileInline: "FROM scratch"}, "."},
		{cachedimage.Options{DockerfileInline: "FROM scratch", Context: "app"}, "app"},
	} {
		file, ctx, cleanup, err := sources(&c.o, tmp)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(file)
		fi, _ := os.Stat(file)
		di, _ := os.Stat(filepath.Dir(file))
		if string(data) != "FROM scratch\n" || ctx != c.contextIs || filepath.Dir(filepath.Dir(file)) != tmp ||
			fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
			t.Errorf("inline: %q in %s (%v, dir %v), context %s", data, file, fi.Mode(), di.Mode(), ctx)
		}
		cleanup()
		if _, err := os.Stat(filepath.Dir(file)); !os.IsNotExist(err) {
			t.Errorf("the inline Dockerfile's dir is left: %v", err)
		}
	}
}

func TestDockerBuildArgs(t *testing.T) {
	tags := []string{"r.example/i:abc1234", "r.example/i:latest"}
	for _, c := range []struct {
		b    dockerBuild
		want string
	}{
		{dockerBuild{File: "Dockerfile", Context: ".", Tags: tags},
			"buildx build --file=Dockerfile --tag=r.example/i:abc1234 --tag=r.example/i:latest --push ."},
		{dockerBuild{File: "d/Dockerfile", Context: "d", Progress: "plain", Tags: tags, PlainHTTP: true, Target: "deps",
			BuildArgs: []string{"A=1", "B"}, Secrets: []string{"id=S,env=S", "id=npmrc,src=.npmrc"},
			Additional: []string{"--ssh", "default=/tmp/a.sock", "--target", "other"}},
			"buildx build --file=d/Dockerfile --progress=plain --tag=r.example/i:abc1234 --tag=r.example/i:latest " +
				"--output=type=image,push=true,registry.insecure=true --target=deps --build-arg=A=1 --build-arg=B " +
				"--secret id=S,env=S --secret id=npmrc,src=.npmrc --ssh default=/tmp/a.sock --target other d"},
	} {
		if got := strings.Join(c.b.args(), " "); got != c.want {
			t.Errorf("args:\n got %s\nwant %s", got, c.want)
		}
	}
	for _, c := range []struct{ raw, want string }{{"NPM", "id=NPM,env=NPM"}, {"id=x,src=f", "id=x,src=f"}, {"id=y", "id=y"}} {
		o, err := cachedimage.Parse([]string{"--secrets", c.raw}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := secretFlag(o.Secrets[0]); got != c.want {
			t.Errorf("secrets %q: --secret %s, want %s", c.raw, got, c.want)
		}
	}
	if got := displayArgs([]string{"build", "--label=a b", "--ssh", "default=$X", ""}); got != `build '--label=a b' --ssh 'default=$X' ''` {
		t.Errorf("displayArgs: %s", got)
	}
}

func TestProgress(t *testing.T) {
	for _, c := range []struct {
		flag string
		env  []string
		want string
	}{
		{"", []string{"BUILDKITE_JOB_ID=1"}, "plain"},
		{"", nil, ""},
		{"tty", []string{"BUILDKITE_JOB_ID=1"}, "tty"},
		{"quiet", nil, "quiet"},
	} {
		if got := progress(c.flag, Env{Environ: c.env}); got != c.want {
			t.Errorf("progress(%q, %q) = %q, want %q", c.flag, c.env, got, c.want)
		}
	}
}

// TestBuildNeedsDocker: without docker on the job's PATH the error says so
// (dockhand's own PATH does not count).
func TestBuildNeedsDocker(t *testing.T) {
	o, err := cachedimage.Parse(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = buildAndPush(t.Context(), o, Env{Environ: []string{"PATH=" + t.TempDir()}, Dir: t.TempDir(), Stderr: io.Discard}, "r/i", "abc1234")
	if err == nil || !strings.Contains(err.Error(), "docker is not on the job's PATH") {
		t.Errorf("no docker: %v", err)
	}
}

func TestLifecyclePolicy(t *testing.T) {
	var p struct {
		Rules []struct {
			RulePriority int    `json:"rulePriority"`
			Description  string `json:"description"`
			Selection    struct {
				TagStatus, CountType, CountUnit string
				CountNumber                     int
			} `json:"selection"`
			Action struct{ Type string } `json:"action"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(LifecyclePolicy(7)), &p); err != nil {
		t.Fatal(err)
	}
	r := p.Rules[0]
	if len(p.Rules) != 1 || r.RulePriority != 1 || r.Selection.TagStatus != "any" || r.Selection.CountType != "sinceImagePushed" ||
		r.Selection.CountUnit != "days" || r.Selection.CountNumber != 7 || r.Action.Type != "expire" ||
		r.Description != "Expire images older than 7 days" {
		t.Errorf("policy %+v", p)
	}
}

// TestJobAPISetEnv serves the Job API's env route on a unix socket and
// checks the request dockhand makes.
func TestJobAPISetEnv(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "job-api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		method, path, auth string
		body               map[string]map[string]string
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.auth = r.Method, r.URL.Path, r.Header.Get("Authorization")
		json.NewDecoder(r.Body).Decode(&got.body)
		if got.body["env"]["PROTECTED"] != "" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			w.Write([]byte(`{"error":"the following environment variables are protected: PROTECTED"}`))
			return
		}
		w.Write([]byte(`{"added":["A"],"updated":[]}`))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if err := jobAPISetEnv(t.Context(), sock, "tok", map[string]string{"A": "1"}); err != nil {
		t.Fatal(err)
	}
	if got.method != http.MethodPatch || got.path != "/api/current-job/v0/env" || got.auth != "Bearer tok" || got.body["env"]["A"] != "1" {
		t.Errorf("request %+v", got)
	}
	err = jobAPISetEnv(t.Context(), sock, "tok", map[string]string{"PROTECTED": "x"})
	if err == nil || !strings.Contains(err.Error(), "protected: PROTECTED") {
		t.Errorf("protected variable: %v", err)
	}
}

// TestBuildCancel: when the job is cancelled, the job's docker is told to
// stop with SIGTERM (the docker CLI then closes its plugin's socket and
// buildx cancels the build); one that ignores it is killed after
// cancelGrace. The docker here is a script standing in for the CLI's
// signal handling only.
func TestBuildCancel(t *testing.T) {
	defer func(g time.Duration) { cancelGrace = g }(cancelGrace)
	cancelGrace = 200 * time.Millisecond
	for _, c := range []struct {
		name, trap, want string
	}{
		{"stops on SIGTERM", `trap 'echo got-sigterm >&2; exit 143' TERM`, "got-sigterm"},
		{"ignores SIGTERM", `trap 'echo ignoring-sigterm >&2' TERM`, "signal: killed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := t.TempDir()
			script := "#!/bin/bash\n" + c.trap + "\necho docker-started >&2\nwhile :; do sleep 5 & wait $!; done\n"
			if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			o, err := cachedimage.Parse(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			pr, pw := io.Pipe()
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				done <- buildAndPush(ctx, o, Env{Environ: []string{"PATH=" + bin + ":/usr/bin:/bin"}, Dir: t.TempDir(), Stderr: pw}, "r/i", "abc1234")
				pw.Close()
			}()
			var out strings.Builder
			buf := make([]byte, 4096)
			for !strings.Contains(out.String(), "docker-started") {
				n, err := pr.Read(buf)
				if err != nil {
					t.Fatalf("docker never started: %v\n%s", err, out.String())
				}
				out.Write(buf[:n])
			}
			start := time.Now()
			cancel()
			rest, _ := io.ReadAll(pr)
			out.Write(rest)
			err = <-done
			if err == nil || !strings.Contains(err.Error(), "context canceled") {
				t.Errorf("err = %v, want the cancellation", err)
			}
			if !strings.Contains(out.String()+err.Error(), c.want) {
				t.Errorf("want %q in the output or error:\n%s\n%v", c.want, out.String(), err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("buildAndPush returned %s after the cancel", d)
			}
		})
	}
}
