package harness_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestSmokeBuildxPush builds an image with the docker CLI's real buildx
// plugin on the kit's buildkitd and pushes it to the kit's registry.
func TestSmokeBuildxPush(t *testing.T) {
	kit := harness.Start(t, harness.Options{})
	work := t.TempDir()
	ctx := filepath.Join(work, "ctx")
	if err := os.MkdirAll(ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	dockerfile := fmt.Sprintf("FROM %s\nRUN echo built-by-buildkit > /hello.txt\n", kit.BaseImage)
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	env, err := kit.DockerConfig(filepath.Join(work, "docker"), "kit", kit.Buildkitd)
	if err != nil {
		t.Fatal(err)
	}
	ref := kit.Registry.Host + "/smoke/app:1"
	cmd := kit.Command(ctx, env, "docker", "buildx", "build", "--push", "--progress", "plain", "-t", ref, ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker buildx build --push: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "echo built-by-buildkit") {
		t.Errorf("build output does not show the RUN step:\n%s", out)
	}
	for tag, want := range map[string]int{"1": http.StatusOK, "2": http.StatusNotFound} {
		status, digest, err := harness.HeadManifest(kit.Registry.Host, "smoke/app", tag)
		if err != nil {
			t.Fatal(err)
		}
		if status != want || (want == http.StatusOK) != strings.HasPrefix(digest, "sha256:") {
			t.Errorf("manifest of smoke/app:%s: HTTP %d, digest %q; want %d (and a digest only when found)", tag, status, digest, want)
		}
	}
}

// TestKitStopsEverything checks the harness leaves no process or mount behind.
func TestKitStopsEverything(t *testing.T) {
	dir := t.TempDir()
	k, err := harness.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := k.StartRegistry(harness.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bk, err := k.StartBuildkitd("buildkitd", reg.Host)
	if err != nil {
		k.Close()
		t.Fatal(err)
	}
	if _, err := k.PushBaseImage(bk, reg); err != nil {
		k.Close()
		t.Fatal(err)
	}
	pids := k.Pids()
	if len(pids) != 2 {
		t.Fatalf("kit runs %d processes, want 2", len(pids))
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still alive after Close", pid)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), dir) {
		t.Errorf("mounts left under %s:\n%s", dir, mounts)
	}
}

// The kit's stack user is the stack's: buildkite-agent, uid 2000, in the
// docker group, and a process run with its credential cannot read root's
// 0600 files (so tests under it do not pass only because they run as root).
func TestStackUserIsUnprivileged(t *testing.T) {
	u := harness.MustStackUser(t)
	if u.Name != harness.StackUserName || u.UID != harness.StackUserUID {
		t.Errorf("stack user = %s uid %d, want %s uid %d", u.Name, u.UID, harness.StackUserName, harness.StackUserUID)
	}
	dir := u.TempDir(t)
	secret, mine := filepath.Join(dir, "root-only"), filepath.Join(dir, "mine")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `id -G; cat "$1" 2>/dev/null && echo read-root-file; echo ok > "$2"`, "sh", secret, mine)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as %s: %v: %s", u.Name, err, out)
	}
	if strings.Contains(string(out), "read-root-file") {
		t.Errorf("uid %d read a root 0600 file: %s", u.UID, out)
	}
	groups, _, _ := strings.Cut(string(out), "\n")
	if !slices.Contains(strings.Fields(groups), strconv.Itoa(u.Docker)) {
		t.Errorf("groups %q lack docker (%d)", groups, u.Docker)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the user cannot write its own temp dir: %v", err)
	}
}

// The engine's and the kit's buildkitd sockets are the docker group's, as on
// the stack (dockerd -G docker): the stack user reaches both, the same
// user outside the docker group reaches neither.
func TestStackUserReachesTheKitsSockets(t *testing.T) {
	e := harness.Start(t, harness.Options{NoBaseImage: true})
	engine, err := e.StartDockerd(harness.DockerdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u := harness.MustStackUser(t)
	run := func(groups []uint32, name string, args ...string) error {
		cmd := exec.Command(e.Bin(name), args...)
		cmd.Env = append([]string{"PATH=" + e.Path(), "DOCKER_HOST=" + engine.Host}, u.Env()...)
		cmd.Dir = u.Home
		cred := u.Credential()
		cred.Groups = groups
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	docker := []string{"version", "--format", "{{.Server.Version}}"}
	buildctl := []string{"--addr", e.Buildkitd.Addr, "debug", "workers"}
	withDocker, without := u.Credential().Groups, []uint32{uint32(u.GID)}
	if err := run(withDocker, "docker", docker...); err != nil {
		t.Errorf("in the docker group: %v", err)
	}
	if err := run(withDocker, "buildctl", buildctl...); err != nil {
		t.Errorf("in the docker group: %v", err)
	}
	if err := run(without, "docker", docker...); err == nil {
		t.Error("outside the docker group, the engine answered")
	}
	if err := run(without, "buildctl", buildctl...); err == nil {
		t.Error("outside the docker group, the kit's buildkitd answered")
	}
}

// The kit's extra versions are the releases they are named for, each a build
// of its own beside the current one: the agent says its version, and each CLI
// plugin tells docker (and compose, which refuses a buildx with none) its
// version in its metadata. The agent's dir holds it under its plain name, as
// BUILDKITE_BIN_PATH needs.
func TestVersionedComponents(t *testing.T) {
	bin, err := harness.FindToolBin(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, version string
		args          []string
		want          string
	}{
		{"buildkite-agent", harness.Stack.Agent, []string{"--version"}, "buildkite-agent version " + harness.Stack.Agent + "+"},
		{"docker-buildx", harness.Stack.Buildx, []string{"docker-cli-plugin-metadata"}, `"Version":"v` + harness.Stack.Buildx + `"`},
		{"docker-compose", harness.Stack.Compose, []string{"docker-cli-plugin-metadata"}, `"Version":"v` + harness.Stack.Compose + `"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			versioned, err := harness.VersionedBin(bin, c.name, c.version)
			if err != nil {
				t.Fatal(err)
			}
			current, err := harness.VersionedBin(bin, c.name, "")
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(versioned) != c.name || filepath.Dir(versioned) == filepath.Dir(current) {
				t.Errorf("%s %s is %s: want it named %s in a dir of its own", c.name, c.version, versioned, c.name)
			}
			outputs := map[string]string{}
			for _, p := range []string{versioned, current} {
				out, err := exec.Command(p, c.args...).CombinedOutput()
				if err != nil {
					t.Fatalf("%s %s: %v\n%s", p, strings.Join(c.args, " "), err, out)
				}
				outputs[p] = strings.Join(strings.Fields(string(out)), "")
			}
			want := strings.Join(strings.Fields(c.want), "")
			if !strings.Contains(outputs[versioned], want) {
				t.Errorf("%s says %q, want %q in it", versioned, outputs[versioned], c.want)
			}
			if strings.Contains(outputs[current], want) {
				t.Errorf("the current %s says %q too: the kit has one version, not two", current, outputs[current])
			}
		})
	}
}

// TestEngineVariants: each engine the kit runs is what its variant says —
// the version, the image store, userns-remap, the data root's own mount —
// as `docker info` reports it, and it builds and runs an image (FROM the
// kit's base, pulled from the kit's registry).
func TestEngineVariants(t *testing.T) {
	kit := harness.Start(t, harness.Options{})
	for _, v := range harness.EngineVariants() {
		t.Run(v.Name, func(t *testing.T) {
			d, err := kit.StartDockerd(harness.DockerdOptions{Name: "engine-" + v.Name, Engine: v})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Stop()
			env := []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONFIG=" + t.TempDir()}
			out, err := kit.Command("", env, "docker", "info", "--format",
				"{{.ServerVersion}}|{{.Driver}}|{{json .DriverStatus}}|{{json .SecurityOptions}}|{{.DockerRootDir}}").CombinedOutput()
			if err != nil {
				t.Fatalf("docker info: %v\n%s", err, out)
			}
			f := strings.Split(strings.TrimSpace(string(out)), "|")
			if len(f) != 5 {
				t.Fatalf("docker info: %q", out)
			}
			version, driver, status, security, root := f[0], f[1], f[2], f[3], f[4]
			major, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0])
			if v.Current != (major >= 25) || (!v.Current && !strings.HasPrefix(version, "20.10.")) {
				t.Errorf("server version %s, want %s", version, map[bool]string{true: "25 or later", false: "20.10"}[v.Current])
			}
			if snap := strings.Contains(status, "io.containerd.snapshotter.v1"); snap != v.ContainerdStore {
				t.Errorf("driver %s %s: containerd image store = %v, want %v", driver, status, snap, v.ContainerdStore)
			}
			if remap := strings.Contains(security, "name=userns"); remap != v.UsernsRemap {
				t.Errorf("security options %s: userns = %v, want %v", security, remap, v.UsernsRemap)
			}
			if mounted := isMountPoint(t, d.DataDir); mounted != v.DataMount {
				t.Errorf("data root %s (%s) is a mount point: %v, want %v", d.DataDir, root, mounted, v.DataMount)
			}
			ctx := t.TempDir()
			if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+kit.BaseImage+"\nRUN echo hi > /hi\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			tag := "variant-" + strings.ReplaceAll(v.Name, ".", "-")
			if out, err := kit.Command(ctx, env, "docker", "build", "-q", "-t", tag, ".").CombinedOutput(); err != nil {
				t.Fatalf("docker build: %v\n%s", err, out)
			}
			out, err = kit.Command("", env, "docker", "run", "--rm", tag, "cat", "/hi").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "hi" {
				t.Errorf("docker run: %v: %q, want hi", err, out)
			}
		})
	}
}

// isMountPoint reports whether dir is on another file system than its
// parent (a bind mount of a dir onto itself, which dockerd makes of its data
// root, is not).
func isMountPoint(t *testing.T, dir string) bool {
	t.Helper()
	var st, parent syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Dir(dir), &parent); err != nil {
		t.Fatal(err)
	}
	return st.Dev != parent.Dev
}
