package build

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/registry/cachedimage"
	"github.com/moby/buildkit/util/progress/progressui"
)

func TestJobBuilder(t *testing.T) {
	dc := t.TempDir()
	remote := buildx.Builder{Name: "dockhand-remote", Driver: buildx.DriverRemote, Nodes: []buildx.Node{{
		Name: "n0", Endpoint: "tcp://10.0.0.5:1234", TLS: buildx.TLS{CA: "/ca.pem", Cert: "/c.pem", Key: "/k.pem", ServerName: "bk"},
	}}}
	local := buildx.Builder{Name: "dockhand-local", Driver: buildx.DriverDockerContainer, Nodes: []buildx.Node{{Name: "dockhand-local0", Endpoint: "default"}}}
	for _, b := range []buildx.Builder{remote, local} {
		if err := buildx.WriteInstance(dc, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		env      []string
		addr     string
		tls      buildx.TLS
		errMatch string
	}{
		{env: []string{"DOCKER_CONFIG=" + dc, "BUILDX_BUILDER=dockhand-remote", "BUILDKIT_HOST=tcp://ignored:1"},
			addr: "tcp://10.0.0.5:1234", tls: remote.Nodes[0].TLS},
		{env: []string{"DOCKER_CONFIG=" + dc, "BUILDX_BUILDER=dockhand-local"}, addr: "docker-container://buildx_buildkit_dockhand-local0"},
		{env: []string{"BUILDKIT_HOST=tcp://bk:1234", "BUILDKIT_TLS_DIR=/tls", "BUILDKIT_TLS_SERVERNAME=bk.internal"},
			addr: "tcp://bk:1234", tls: buildx.TLS{CA: "/tls/ca.pem", Cert: "/tls/cert.pem", Key: "/tls/key.pem", ServerName: "bk.internal"}},
		{env: []string{"DOCKER_CONFIG=" + dc, "BUILDX_BUILDER=missing", "BUILDKIT_HOST=unix:///run/bk.sock"}, addr: "unix:///run/bk.sock"},
		{env: []string{"DOCKER_CONFIG=" + dc, "BUILDX_BUILDER=missing"}, errMatch: `no buildx instance "missing"`},
		{env: nil, errMatch: "no builder: the job has neither BUILDX_BUILDER"},
	} {
		ep, err := jobBuilder(Env{Environ: c.env})
		switch {
		case c.errMatch != "":
			if err == nil || !strings.Contains(err.Error(), c.errMatch) {
				t.Errorf("%q: %v, want an error saying %q", c.env, err, c.errMatch)
			}
		case err != nil || ep.addr != c.addr || ep.tls != c.tls:
			t.Errorf("%q: %+v, %v; want %s %+v", c.env, ep, err, c.addr, c.tls)
		}
	}
	docker := buildx.Builder{Name: "default", Driver: buildx.DriverDocker, Nodes: []buildx.Node{{Name: "default", Endpoint: "unix:///var/run/docker.sock"}}}
	data, _ := json.Marshal(map[string]any{"Name": "default", "Driver": "docker", "Nodes": []map[string]any{{"Name": "default", "Endpoint": docker.Nodes[0].Endpoint}}})
	os.WriteFile(buildx.InstancePath(dc, "default"), data, 0o600)
	if _, err := jobBuilder(Env{Environ: []string{"DOCKER_CONFIG=" + dc, "BUILDX_BUILDER=default"}}); err == nil ||
		!strings.Contains(err.Error(), `builder "default" uses the docker driver`) {
		t.Errorf("docker driver: %v", err)
	}
}

func TestSources(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		o                        cachedimage.Options
		dfDir, dfName, contextIs string
	}{
		{cachedimage.Options{}, dir, "Dockerfile", dir},
		{cachedimage.Options{Dockerfile: "docker/Dockerfile.ci"}, dir + "/docker", "Dockerfile.ci", dir + "/docker"},
		{cachedimage.Options{Dockerfile: "docker/Dockerfile.ci", Context: "."}, dir + "/docker", "Dockerfile.ci", dir},
		{cachedimage.Options{Dockerfile: "/abs/Dockerfile"}, "/abs", "Dockerfile", "/abs"},
	} {
		dfDir, dfName, ctx, cleanup, err := sources(&c.o, dir)
		cleanup()
		if err != nil || dfDir != c.dfDir || dfName != c.dfName || ctx != c.contextIs {
			t.Errorf("%+v: %s %s %s %v", c.o, dfDir, dfName, ctx, err)
		}
	}
	inline := cachedimage.Options{DockerfileInline: "FROM scratch"}
	dfDir, dfName, ctx, cleanup, err := sources(&inline, dir)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dfDir, dfName))
	fi, _ := os.Stat(filepath.Join(dfDir, dfName))
	if string(data) != "FROM scratch\n" || ctx != dir || fi.Mode().Perm() != 0o600 {
		t.Errorf("inline: %q in %s (%v), context %s", data, dfDir, fi.Mode(), ctx)
	}
	cleanup()
	if _, err := os.Stat(dfDir); !os.IsNotExist(err) {
		t.Errorf("the inline Dockerfile's dir is left: %v", err)
	}
}

func TestProgressMode(t *testing.T) {
	var buf bytes.Buffer
	for _, c := range []struct {
		flag string
		env  []string
		out  io.Writer
		want progressui.DisplayMode
	}{
		{"", []string{"BUILDKITE_JOB_ID=1"}, os.Stderr, progressui.PlainMode},
		{"", nil, &buf, progressui.PlainMode},
		{"", nil, os.Stderr, progressui.AutoMode},
		{"tty", []string{"BUILDKITE_JOB_ID=1"}, &buf, progressui.TtyMode},
		{"quiet", nil, os.Stderr, progressui.QuietMode},
	} {
		if got := progressMode(c.flag, Env{Environ: c.env, Stderr: c.out}); got != c.want {
			t.Errorf("progressMode(%q, %q) = %s, want %s", c.flag, c.env, got, c.want)
		}
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

func TestSecretStore(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".npmrc"), []byte("//registry/:_authToken=x"), 0o600)
	s, _ := newSecretStore([]cachedimage.Secret{{ID: "NPM_TOKEN", Env: "NPM_TOKEN"}, {ID: "npmrc", Src: ".npmrc"}, {ID: "gone", Env: "GONE"}},
		Env{Dir: dir, Environ: []string{"NPM_TOKEN=secret-value"}})
	ctx := context.Background()
	if v, err := s.GetSecret(ctx, "NPM_TOKEN"); err != nil || string(v) != "secret-value" {
		t.Errorf("env secret: %q %v", v, err)
	}
	if v, err := s.GetSecret(ctx, "npmrc"); err != nil || !strings.Contains(string(v), "_authToken") {
		t.Errorf("file secret: %q %v", v, err)
	}
	if _, err := s.GetSecret(ctx, "gone"); err == nil || !strings.Contains(err.Error(), "the variable GONE is not set") {
		t.Errorf("unset: %v", err)
	}
	if _, err := s.GetSecret(ctx, "other"); err == nil {
		t.Error("unknown secret served")
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
	if err := jobAPISetEnv(context.Background(), sock, "tok", map[string]string{"A": "1"}); err != nil {
		t.Fatal(err)
	}
	if got.method != http.MethodPatch || got.path != "/api/current-job/v0/env" || got.auth != "Bearer tok" || got.body["env"]["A"] != "1" {
		t.Errorf("request %+v", got)
	}
	err = jobAPISetEnv(context.Background(), sock, "tok", map[string]string{"PROTECTED": "x"})
	if err == nil || !strings.Contains(err.Error(), "protected: PROTECTED") {
		t.Errorf("protected variable: %v", err)
	}
}

func TestCacheImport(t *testing.T) {
	if e := cacheImport("r/cache:main"); e.Type != "registry" || e.Attrs["ref"] != "r/cache:main" {
		t.Errorf("%+v", e)
	}
	if e := cacheImport("type=local,src=/c"); e.Type != "local" || e.Attrs["src"] != "/c" {
		t.Errorf("%+v", e)
	}
}
