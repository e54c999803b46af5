package packer

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/buildkite/shellwords"

	"github.com/dockhand-ci/dockhand/test/harness"
	"github.com/dockhand-ci/dockhand/test/unitfile"
)

// want is what one installed path must be.
type want struct {
	typ      string // file, dir, link
	mode     os.FileMode
	uid, gid uint32
	src      string // a file's expected content, from this file
	link     string
}

func checkTree(t *testing.T, root string, got map[string]entry, expected map[string]want) {
	t.Helper()
	for p, w := range expected {
		e, ok := got[p]
		if !ok {
			t.Errorf("%s: not installed", p)
			continue
		}
		if e.Type != w.typ || (w.typ != "link" && e.Mode != w.mode) || e.UID != w.uid || e.GID != w.gid {
			t.Errorf("%s: %s %04o %d:%d, want %s %04o %d:%d", p, e.Type, e.Mode, e.UID, e.GID, w.typ, w.mode, w.uid, w.gid)
		}
		if w.src != "" && e.Sum != sha(t, w.src) {
			t.Errorf("%s: content differs from %s", p, w.src)
		}
		if e.Link != w.link {
			t.Errorf("%s: link to %q, want %q", p, e.Link, w.link)
		}
	}
	for p := range got {
		if _, ok := expected[p]; !ok {
			t.Errorf("%s: installed but not expected (%s)", p, got[p])
		}
	}
}

func standardDirs(dirs ...string) map[string]want {
	m := map[string]want{}
	for _, d := range dirs {
		for p := d; p != "/"; p = filepath.Dir(p) {
			m[p] = want{typ: "dir", mode: 0o755}
		}
	}
	return m
}

// nscTarball writes a tarball laid out as the Namespace CLI's releases are:
// the binaries at the top.
func nscTarball(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "nsc_linux_amd64.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"nsc", "docker-credential-nsc"} {
		body := "#!/bin/sh\necho " + name + " test build\n"
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	f.Close()
	return path
}

// TestInstallDockhand runs install-dockhand.sh into a throwaway root the way
// the Packer build runs it, and checks every path, mode, owner, content and
// link; a second run changes nothing (not even a modification time); an
// upgrade replaces only what changed and keeps an operator's config edit.
func TestInstallDockhand(t *testing.T) {
	root := harness.MustRepoRoot(t)
	script := filepath.Join(root, "packer/scripts/install-dockhand.sh")
	from := dockhandDir(t)
	tmp := t.TempDir()
	nsc := nscTarball(t, tmp)
	dest := filepath.Join(tmp, "root")
	// The stack's agent user is uid/gid 2000; this machine need not have it.
	args := []string{"--destdir", dest, "--from", from, "--user", "2000", "--group", "2000",
		"--buildctl", tool(t, "buildctl"), "--rootlesskit", tool(t, "rootlesskit"), "--nsc-tarball", nsc}
	// The image has a subgid range for another user: the agent's goes after
	// it. It has no /etc/subuid: the script makes one.
	writeFile(t, filepath.Join(dest, "etc/subgid"), "ec2-user:100000:65536\n", 0o644)
	subuid, subgid := filepath.Join(tmp, "subuid"), filepath.Join(tmp, "subgid")
	writeFile(t, subuid, "2000:100000:65536\n", 0o644)
	writeFile(t, subgid, "ec2-user:100000:65536\n2000:165536:65536\n", 0o644)

	out := mustRun(t, nil, "bash", append([]string{script}, args...)...)
	t.Logf("first run:\n%s", out)
	files := filepath.Join(root, "packer/files/agent")
	expected := standardDirs("/usr/local/bin", "/usr/local/libexec/dockhand/hooks", "/usr/local/share/dockhand",
		"/etc/dockhand", "/etc/systemd/system/buildkite-agent.service.d", "/var/lib")
	for p, w := range map[string]want{
		"/usr/local/bin/dockhand":                                        {typ: "file", mode: 0o755, src: filepath.Join(from, "dockhand")},
		"/usr/local/bin/dockhand-cloud":                                  {typ: "file", mode: 0o755, src: filepath.Join(from, "dockhand-cloud")},
		"/usr/local/bin/docker-credential-dockhand":                      {typ: "link", link: "dockhand"},
		"/usr/local/libexec/dockhand/hooks/environment":                  {typ: "file", mode: 0o755, src: filepath.Join(root, "hooks/environment")},
		"/etc/systemd/system/buildkite-agent.service.d/50-dockhand.conf": {typ: "file", mode: 0o644, src: filepath.Join(files, "50-dockhand.conf")},
		"/etc/dockhand/dockhand.toml":                                    {typ: "file", mode: 0o644, src: filepath.Join(files, "dockhand.toml")},
		"/usr/local/share/dockhand/dockhand.toml.default":                {typ: "file", mode: 0o644, src: filepath.Join(files, "dockhand.toml")},
		"/var/lib/dockhand":                                              {typ: "dir", mode: 0o700, uid: 2000, gid: 2000},
		"/usr/local/bin/buildctl":                                        {typ: "file", mode: 0o755, src: tool(t, "buildctl")},
		"/usr/local/bin/rootlesskit":                                     {typ: "file", mode: 0o755, src: tool(t, "rootlesskit")},
		"/etc/subuid":                                                    {typ: "file", mode: 0o644, src: subuid},
		"/etc/subgid":                                                    {typ: "file", mode: 0o644, src: subgid},
		"/usr/local/bin/nsc":                                             {typ: "file", mode: 0o755},
		"/usr/local/bin/docker-credential-nsc":                           {typ: "file", mode: 0o755},
	} {
		expected[p] = w
	}
	first := manifest(t, dest)
	checkTree(t, dest, first, expected)
	if !strings.Contains(out, "0 unchanged") {
		t.Errorf("first run into an empty root should change everything:\n%s", out)
	}

	// Every path the drop-in hands the agent is one the script installed.
	unit, err := unitfile.ReadFile(filepath.Join(dest, "etc/systemd/system/buildkite-agent.service.d/50-dockhand.conf"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := unit.Environment()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		_, v, _ := strings.Cut(kv, "=")
		words, err := shellwords.Split(v) // as the agent splits it
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range words {
			for _, p := range strings.Split(w, ",") { // additional-hooks-paths is a list
				if strings.HasPrefix(p, "/") {
					if _, ok := first[p]; !ok {
						t.Errorf("the drop-in's %s names %s, which the script does not install", kv, p)
					}
				}
			}
		}
	}

	out = mustRun(t, nil, "bash", append([]string{script}, args...)...)
	if d := diffManifests(first, manifest(t, dest)); len(d) > 0 {
		t.Errorf("the second run changed the root:\n%s\n%s", strings.Join(d, "\n"), out)
	}
	if !strings.Contains(out, ": 0 changed,") {
		t.Errorf("the second run should report nothing changed:\n%s", out)
	}

	// An upgrade: a new dockhand, an operator's config edit, and a hook an
	// older release shipped.
	newFrom := filepath.Join(tmp, "new")
	os.MkdirAll(newFrom, 0o755)
	for _, name := range []string{"dockhand", "dockhand-cloud"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "dockhand" {
			b = append(b, "trailing bytes of a new build"...) // still runs: ELF ignores them
		}
		writeFile(t, filepath.Join(newFrom, name), string(b), 0o755)
	}
	conf := filepath.Join(dest, "etc/dockhand/dockhand.toml")
	edited := readFile(t, conf) + "\ndebug = true\n"
	writeFile(t, conf, edited, 0o644)
	writeFile(t, filepath.Join(dest, "usr/local/libexec/dockhand/hooks/pre-exit"), "#!/bin/bash\n", 0o755)
	before := manifest(t, dest)
	upgradeArgs := slices.Clone(args)
	upgradeArgs[3] = newFrom
	out = mustRun(t, nil, "bash", append([]string{script}, upgradeArgs...)...)
	after := manifest(t, dest)
	// Only dockhand (and its dir's time), and the old hook (and its dir's).
	changedPaths := func(d []string) []string {
		var out []string
		for _, line := range d {
			p, _, _ := strings.Cut(line, ": ")
			out = append(out, p)
		}
		return out
	}
	wantChanged := []string{"- /usr/local/libexec/dockhand/hooks/pre-exit", "~ /usr/local/bin/dockhand", "~ /usr/local/bin", "~ /usr/local/libexec/dockhand/hooks"}
	if d := diffManifests(before, after); !slices.Equal(changedPaths(d), wantChanged) {
		t.Errorf("the upgrade changed %q, want %q:\n%s\n%s", changedPaths(d), wantChanged, strings.Join(d, "\n"), out)
	}
	if readFile(t, conf) != edited || !strings.Contains(out, "kept /etc/dockhand/dockhand.toml") {
		t.Errorf("the edited config was not kept, or not reported:\n%s", out)
	}
	if after["/usr/local/bin/dockhand"].Sum != sha(t, filepath.Join(newFrom, "dockhand")) {
		t.Error("dockhand was not upgraded")
	}

	// A config edit that does not load fails the install, naming the file.
	writeFile(t, conf, edited+"stat_dir = \"/x\"\n", 0o644)
	out, code := run(t, nil, "bash", append([]string{script}, args...)...)
	if code == 0 || !strings.Contains(out, "/etc/dockhand/dockhand.toml does not load") || !strings.Contains(out, "stat_dir") {
		t.Errorf("an invalid config must fail the install naming the file and key; exit %d:\n%s", code, out)
	}
}

// TestInstallDockhandRefusesBadInput: a missing user or binary stops the
// script before it creates anything.
func TestInstallDockhandRefusesBadInput(t *testing.T) {
	root := harness.MustRepoRoot(t)
	script := filepath.Join(root, "packer/scripts/install-dockhand.sh")
	from := dockhandDir(t)
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"unknown user", []string{"--from", from, "--user", "no-such-user-dockhand"}, "user no-such-user-dockhand does not exist"},
		{"unknown group", []string{"--from", from, "--user", "0", "--group", "no-such-group-dockhand"}, "group no-such-group-dockhand does not exist"},
		{"no binaries", []string{"--from", t.TempDir(), "--user", "0"}, "dockhand: missing (run 'make release'"},
		{"missing buildctl", []string{"--from", from, "--user", "0", "--buildctl", "/nonexistent/buildctl"}, "--buildctl /nonexistent/buildctl: no such file"},
		{"missing rootlesskit", []string{"--from", from, "--user", "0", "--rootlesskit", "/nonexistent/rootlesskit"}, "--rootlesskit /nonexistent/rootlesskit: no such file"},
		{"unknown flag", []string{"--frm", from}, "unknown argument: --frm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "root")
			out, code := run(t, nil, "bash", append([]string{script, "--destdir", dest}, tc.args...)...)
			if code == 0 || !strings.Contains(out, tc.msg) {
				t.Errorf("exit %d, want a failure saying %q:\n%s", code, tc.msg, out)
			}
			if entries, _ := os.ReadDir(dest); len(entries) != 0 {
				t.Errorf("it created %v before failing", entries)
			}
		})
	}
}

// TestInstallBuildkitd does the same for the builder image's script.
func TestInstallBuildkitd(t *testing.T) {
	root := harness.MustRepoRoot(t)
	script := filepath.Join(root, "packer/scripts/install-buildkitd.sh")
	files := filepath.Join(root, "packer/files/buildkitd")
	dest := filepath.Join(t.TempDir(), "root")
	args := []string{"--destdir", dest, "--buildkitd", tool(t, "buildkitd"), "--buildctl", tool(t, "buildctl"), "--runc", tool(t, "runc")}
	out := mustRun(t, nil, "bash", append([]string{script}, args...)...)
	t.Logf("first run:\n%s", out)

	expected := standardDirs("/usr/local/bin", "/usr/local/sbin", "/usr/local/libexec/dockhand",
		"/etc/systemd/system/multi-user.target.wants", "/etc/default", "/etc/buildkit", "/var/lib")
	for p, w := range map[string]want{
		"/usr/local/bin/buildkitd":          {typ: "file", mode: 0o755, src: tool(t, "buildkitd")},
		"/usr/local/bin/buildctl":           {typ: "file", mode: 0o755, src: tool(t, "buildctl")},
		"/usr/local/sbin/runc":              {typ: "file", mode: 0o755, src: tool(t, "runc")},
		"/etc/buildkit/tls":                 {typ: "dir", mode: 0o700},
		"/var/lib/buildkit":                 {typ: "dir", mode: 0o700},
		"/etc/buildkit/buildkitd.toml.tmpl": {typ: "file", mode: 0o644, src: filepath.Join(files, "buildkitd.toml.tmpl")},
		"/etc/default/buildkitd":            {typ: "file", mode: 0o644, src: filepath.Join(files, "buildkitd.env")},
		"/etc/systemd/system/multi-user.target.wants/buildkitd.service":           {typ: "link", link: "/etc/systemd/system/buildkitd.service"},
		"/etc/systemd/system/multi-user.target.wants/buildkitd-lifecycle.service": {typ: "link", link: "/etc/systemd/system/buildkitd-lifecycle.service"},
	} {
		expected[p] = w
	}
	for _, h := range []string{"buildkitd-start", "buildkitd-config", "buildkitd-volume", "buildkitd-fetch-tls", "buildkitd-drain", "buildkitd-lifecycle"} {
		expected["/usr/local/libexec/dockhand/"+h] = want{typ: "file", mode: 0o755, src: filepath.Join(files, h)}
	}
	for _, u := range []string{"buildkitd.service", "buildkitd-volume.service", "buildkitd-tls.service", "buildkitd-lifecycle.service"} {
		expected["/etc/systemd/system/"+u] = want{typ: "file", mode: 0o644, src: filepath.Join(files, u)}
	}
	first := manifest(t, dest)
	checkTree(t, dest, first, expected)

	out = mustRun(t, nil, "bash", append([]string{script}, args...)...)
	if d := diffManifests(first, manifest(t, dest)); len(d) > 0 || !strings.Contains(out, ": 0 changed,") {
		t.Errorf("the second run changed the root:\n%s\n%s", strings.Join(d, "\n"), out)
	}

	// An edited template is kept, and it must still render.
	tmpl := filepath.Join(dest, "etc/buildkit/buildkitd.toml.tmpl")
	writeFile(t, tmpl, readFile(t, tmpl)+"\n[registry.\"mirror.internal:5000\"]\n  http = true\n", 0o644)
	out = mustRun(t, nil, "bash", append([]string{script}, args...)...)
	if !strings.Contains(out, "kept /etc/buildkit/buildkitd.toml.tmpl") || !strings.Contains(readFile(t, tmpl), "mirror.internal") {
		t.Errorf("the edited template was not kept:\n%s", out)
	}
	writeFile(t, tmpl, readFile(t, tmpl)+"\nmaxUsedSpace = \"@MAX_USEDD@\"\n", 0o644)
	out, code := run(t, nil, "bash", append([]string{script}, args...)...)
	if code == 0 || !strings.Contains(out, "@MAX_USEDD@") || !strings.Contains(out, "does not render") {
		t.Errorf("a template with an unknown placeholder must fail the install; exit %d:\n%s", code, out)
	}
}
