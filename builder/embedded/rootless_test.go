package embedded

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeHost is a host for CheckRootless: the executables on PATH and the
// files, nothing else.
type fakeHost struct {
	path  []string
	files map[string]string
}

func (f fakeHost) host(uid int, name string) RootlessHost {
	return RootlessHost{
		UID: uid, GID: uid, User: name,
		LookPath: func(n string) (string, error) {
			if slices.Contains(f.path, n) && strings.HasPrefix(n, "/") {
				return n, nil
			}
			if slices.Contains(f.path, n) {
				return "/usr/bin/" + n, nil
			}
			return "", errors.New(n + " is not on PATH")
		},
		ReadFile: func(p string) ([]byte, error) {
			if v, ok := f.files[p]; ok {
				return []byte(v), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		},
	}
}

// stackHost is an Elastic CI Stack agent host as the AMI provisions it.
func stackHost() fakeHost {
	return fakeHost{
		path: []string{"rootlesskit", "newuidmap", "newgidmap"},
		files: map[string]string{
			subUIDFile:    "ec2-user:165536:65536\nbuildkite-agent:100000:65536\n",
			subGIDFile:    "buildkite-agent:100000:65536\n",
			maxUserNSFile: "63288\n",
		},
	}
}

func TestCheckRootless(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*fakeHost)
		user   string
		want   []string // substrings of the problem, nil: none
	}{
		{name: "the stack's host as the AMI makes it", change: func(*fakeHost) {}},
		{name: "ranges by uid", change: func(f *fakeHost) {
			f.files[subUIDFile], f.files[subGIDFile] = "2000:100000:65536\n", "2000:100000:65536\n"
		}},
		{name: "a range in two pieces", change: func(f *fakeHost) {
			f.files[subUIDFile] = "buildkite-agent:100000:32768\n# split\nbuildkite-agent:200000:32768\n"
		}},
		{name: "no rootlesskit", change: func(f *fakeHost) { f.path = []string{"newuidmap", "newgidmap"} },
			want: []string{"rootlesskit is not on PATH", "docs/install.md", "embedded.rootlesskit"}},
		{name: "no newuidmap", change: func(f *fakeHost) { f.path = []string{"rootlesskit", "newgidmap"} },
			want: []string{"newuidmap is not on PATH", "uidmap package"}},
		{name: "no newgidmap", change: func(f *fakeHost) { f.path = []string{"rootlesskit", "newuidmap"} },
			want: []string{"newgidmap is not on PATH", "uidmap package"}},
		{name: "no /etc/subuid", change: func(f *fakeHost) { delete(f.files, subUIDFile) },
			want: []string{"/etc/subuid has no range for buildkite-agent", "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 buildkite-agent"}},
		{name: "another user's range only", change: func(f *fakeHost) { f.files[subGIDFile] = "ec2-user:100000:65536\n" },
			want: []string{"/etc/subgid has no range for buildkite-agent", "usermod"}},
		{name: "a range too small", change: func(f *fakeHost) { f.files[subUIDFile] = "buildkite-agent:100000:1000\n" },
			want: []string{"/etc/subuid has only 1000 ids for buildkite-agent, needs 65536"}},
		{name: "a malformed line is no range", change: func(f *fakeHost) { f.files[subUIDFile] = "buildkite-agent:x:65536\nbuildkite-agent:100000\n" },
			want: []string{"/etc/subuid has no range"}},
		{name: "a user without a name", user: "-", change: func(f *fakeHost) {},
			want: []string{"uid 2000 and starts", "/etc/subuid has no range for 2000", "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 2000"}},
		{name: "user namespaces off", change: func(f *fakeHost) { f.files[maxUserNSFile] = "0\n" },
			want: []string{"user namespaces are disabled", "user.max_user_namespaces"}},
		{name: "Debian's unprivileged switch off", change: func(f *fakeHost) { f.files[debianUserNSFile] = "0\n" },
			want: []string{"kernel.unprivileged_userns_clone = 0", "sysctl -w kernel.unprivileged_userns_clone=1"}},
		{name: "Debian's unprivileged switch on", change: func(f *fakeHost) { f.files[debianUserNSFile] = "1\n" }},
		{name: "AppArmor's restriction", change: func(f *fakeHost) { f.files[apparmorNSFile] = "1\n" },
			want: []string{"AppArmor restricts unprivileged user namespaces", "profile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := stackHost()
			tc.change(&f)
			name := "buildkite-agent"
			if tc.user == "-" {
				name = ""
			}
			r := CheckRootless(f.host(2000, name))
			if tc.want == nil {
				if r.Problem != "" || r.Rootlesskit != "/usr/bin/rootlesskit" {
					t.Fatalf("got %+v, want no problem and rootlesskit found", r)
				}
				return
			}
			if strings.Contains(r.Problem, "\n") || !strings.HasPrefix(r.Problem, "dockhand runs as ") {
				t.Errorf("problem %q is not one line saying who dockhand runs as", r.Problem)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Problem, w) {
					t.Errorf("problem %q does not say %q", r.Problem, w)
				}
			}
			if r.User == "" {
				t.Errorf("no USER for buildkitd: %+v", r)
			}
		})
	}
}

func TestCheckRootlessConfiguredRootlesskit(t *testing.T) {
	f := stackHost()
	f.path = []string{"newuidmap", "newgidmap", "/opt/rootlesskit/bin/rootlesskit"}
	h := f.host(2000, "buildkite-agent")
	h.Rootlesskit = "/opt/rootlesskit/bin/rootlesskit"
	if r := CheckRootless(h); r.Problem != "" || r.Rootlesskit != h.Rootlesskit {
		t.Fatalf("embedded.rootlesskit set: %+v", r)
	}
	h.Rootlesskit = "/opt/nowhere/rootlesskit"
	if r := CheckRootless(h); !strings.Contains(r.Problem, `embedded.rootlesskit = "/opt/nowhere/rootlesskit" is not an executable`) {
		t.Fatalf("embedded.rootlesskit missing: %+v", r)
	}
}

// TestEnsureRootlessProblemStartsNothing: Ensure with a problem fails at
// once with it, starting nothing, leaving no pid file.
func TestEnsureRootlessProblemStartsNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "buildkitd")
	e := Embedded{Dir: dir, Buildkitd: "/nonexistent/buildkitd", StartTimeout: time.Minute,
		Rootless: &Rootless{Rootlesskit: "/nonexistent/rootlesskit", User: "u", Problem: "dockhand runs as u (uid 2000) and starts buildkitd rootless: newuidmap is not on PATH"}}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	started, pid, err := e.Ensure(ctx)
	if err == nil || started || pid != 0 || !strings.Contains(err.Error(), "newuidmap is not on PATH") {
		t.Fatalf("Ensure = %v %d %v, want the problem", started, pid, err)
	}
	if _, err := os.Stat(filepath.Join(dir, PidFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a pid file was written: %v", err)
	}
}

func TestRootlessCommand(t *testing.T) {
	e := Embedded{Dir: "/var/lib/dockhand/buildkitd", Buildkitd: "/usr/local/bin/buildkitd",
		Rootless: &Rootless{Rootlesskit: "/usr/local/bin/rootlesskit", User: "buildkite-agent"}}
	env0 := []string{"PATH=/usr/bin:/bin"}
	argv, envv := e.rootlessCommand([]string{"--addr", "unix:///var/lib/dockhand/buildkitd/buildkitd.sock"}, env0)
	want := []string{"/usr/local/bin/rootlesskit", "--net=host", "--pidns", "--state-dir=/var/lib/dockhand/buildkitd/rk",
		"--subid-source=dynamic", "/usr/local/bin/buildkitd", "--addr", "unix:///var/lib/dockhand/buildkitd/buildkitd.sock"}
	if !slices.Equal(argv, want) {
		t.Errorf("argv = %q, want %q", argv, want)
	}
	if !slices.Equal(envv, []string{"PATH=/usr/bin:/bin", "USER=buildkite-agent", "XDG_RUNTIME_DIR=/var/lib/dockhand/buildkitd/run",
		"GETSUBIDS=/var/lib/dockhand/buildkitd/getsubids"}) {
		t.Errorf("env = %q", envv)
	}
	if len(env0) != 1 {
		t.Errorf("the caller's env was changed: %q", env0)
	}
	if got := e.longestSocket(); got != "/var/lib/dockhand/buildkitd/run/buildkit/otel-grpc.sock" {
		t.Errorf("longest socket %s", got)
	}
}

// TestSubIDRangesWithoutTheUsersOwnID: the Elastic CI Stack's userns-remap
// writes /etc/subuid as buildkite-agent:2000:1 plus a range; rootlesskit
// maps the user's own uid as root and would map it again from that line,
// which the kernel refuses (checked by hand: "newuidmap: write to uid_map
// failed: Invalid argument"). The ranges handed to it leave the own id out.
func TestSubIDRangesWithoutTheUsersOwnID(t *testing.T) {
	f := stackHost()
	f.files[subUIDFile] = "buildkite-agent:2000:1\nbuildkite-agent:100000:65536\n"
	f.files[subGIDFile] = "buildkite-agent:995:1\nbuildkite-agent:100000:65536\n"
	r := CheckRootless(f.host(2000, "buildkite-agent"))
	if r.Problem != "" {
		t.Fatalf("the stack's userns-remap layout: %s", r.Problem)
	}
	if !slices.Equal(r.SubUIDs, []IDRange{{100000, 65536}}) || !slices.Equal(r.SubGIDs, []IDRange{{995, 1}, {100000, 65536}}) {
		t.Errorf("ranges uid %v gid %v", r.SubUIDs, r.SubGIDs)
	}
	// A range around the own id is split; one that is only the own id
	// leaves too few.
	if got := subIDRanges([]byte("u:1000:100000\n"), "u", 2000, 2000); !slices.Equal(got, []IDRange{{1000, 1000}, {2001, 98999}}) {
		t.Errorf("split: %v", got)
	}
	f.files[subUIDFile] = "buildkite-agent:2000:1\n"
	if r := CheckRootless(f.host(2000, "buildkite-agent")); !strings.Contains(r.Problem, "/etc/subuid has no range for buildkite-agent") {
		t.Errorf("only the own uid: %q", r.Problem)
	}
}

// TestGetsubidsScript runs the getsubids dockhand writes for rootlesskit as
// rootlesskit does (`getsubids [-g] USER`) and parses its lines as
// rootlesskit's dynamic source does ("N: USER START COUNT").
func TestGetsubidsScript(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "buildkitd")
	e := Embedded{Dir: dir, Rootless: &Rootless{User: "buildkite-agent",
		SubUIDs: []IDRange{{100000, 65536}}, SubGIDs: []IDRange{{995, 1}, {100000, 65536}}}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.rootlessDirs(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []IDRange
	}{{[]string{"buildkite-agent"}, e.Rootless.SubUIDs}, {[]string{"2000"}, e.Rootless.SubUIDs}, {[]string{"-g", "buildkite-agent"}, e.Rootless.SubGIDs}} {
		out, err := exec.Command(filepath.Join(dir, "getsubids"), tc.args...).Output()
		if err != nil {
			t.Fatalf("getsubids %q: %v", tc.args, err)
		}
		var got []IDRange
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			_, triplet, ok := strings.Cut(line, ":")
			f := strings.Fields(triplet)
			if !ok || len(f) != 3 {
				t.Fatalf("getsubids %q: line %q", tc.args, line)
			}
			start, _ := strconv.Atoi(f[1])
			count, _ := strconv.Atoi(f[2])
			got = append(got, IDRange{start, count})
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("getsubids %q = %v, want %v", tc.args, got, tc.want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "getsubids")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("getsubids mode: %v %v", fi.Mode(), err)
	}
}
