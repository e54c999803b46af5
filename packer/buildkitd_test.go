package packer

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestBuildkitdStartDecides: the wrapper that is buildkitd.service's
// ExecStart listens on TCP only with all the TLS material, or in plaintext
// when asked to in so many words; otherwise it refuses with exit 78, saying
// what is missing.
func TestBuildkitdStartDecides(t *testing.T) {
	start := filepath.Join(harness.MustRepoRoot(t), "packer/files/buildkitd/buildkitd-start")
	for _, tc := range []struct {
		name  string
		files map[string]os.FileMode // TLS files present in the dir, with modes
		empty []string               // of those, the empty ones
		env   []string
		code  int
		mode  string   // mode= line on success
		has   []string // argv words (or output, on failure) that must be there
		hasnt []string // argv words that must not
	}{
		{name: "all three: mutual TLS", files: allTLS(), code: 0, mode: "mtls",
			has: []string{"--addr tcp://0.0.0.0:1234", "--tlscacert TLS/ca.pem", "--tlscert TLS/server.pem", "--tlskey TLS/server-key.pem",
				"--addr unix:///run/buildkit/buildkitd.sock", "--root /var/lib/buildkit", "--config /run/buildkit/buildkitd.toml"}},
		{name: "none: refuses", code: 78,
			has: []string{"refusing to start: no TLS material for tcp://0.0.0.0:1234", "TLS/ca.pem TLS/server.pem TLS/server-key.pem", "BUILDKITD_PLAINTEXT=true"}},
		{name: "none, plaintext=false said: refuses", env: []string{"BUILDKITD_PLAINTEXT=false"}, code: 78, has: []string{"no TLS material"}},
		{name: "none, plaintext asked for", env: []string{"BUILDKITD_PLAINTEXT=true"}, code: 0, mode: "plaintext",
			has: []string{"--addr tcp://0.0.0.0:1234", "WARNING: listening on tcp://0.0.0.0:1234 WITHOUT TLS"}, hasnt: []string{"--tlscacert", "--tlskey"}},
		{name: "plaintext in capitals", env: []string{"BUILDKITD_PLAINTEXT=TRUE"}, code: 0, mode: "plaintext"},
		{name: "plaintext misspelt: refuses", env: []string{"BUILDKITD_PLAINTEXT=ture"}, code: 78, has: []string{"BUILDKITD_PLAINTEXT=ture is not true or false"}},
		{name: "two of three: refuses", files: map[string]os.FileMode{"ca.pem": 0o644, "server.pem": 0o644}, code: 78,
			has: []string{"incomplete TLS material", "TLS/server-key.pem missing or empty"}},
		{name: "two of three, even with plaintext: refuses", files: map[string]os.FileMode{"ca.pem": 0o644, "server-key.pem": 0o600},
			env: []string{"BUILDKITD_PLAINTEXT=true"}, code: 78, has: []string{"incomplete TLS material", "TLS/server.pem missing or empty"}},
		{name: "an empty key counts as missing", files: allTLS(), empty: []string{"server-key.pem"}, code: 78, has: []string{"TLS/server-key.pem missing or empty"}},
		{name: "a key others can read: refuses", files: map[string]os.FileMode{"ca.pem": 0o644, "server.pem": 0o644, "server-key.pem": 0o644}, code: 78,
			has: []string{"TLS/server-key.pem is readable by others (mode 644)"}},
		{name: "empty address: the local socket only, no TLS needed", env: []string{"BUILDKITD_ADDR="}, code: 0, mode: "local",
			has: []string{"--addr unix:///run/buildkit/buildkitd.sock"}, hasnt: []string{"tcp://"}},
		{name: "another port with TLS", files: allTLS(), env: []string{"BUILDKITD_ADDR=tcp://10.0.0.5:8372"}, code: 0, mode: "mtls",
			has: []string{"--addr tcp://10.0.0.5:8372", "--tlskey TLS/server-key.pem"}},
		{name: "files named one by one", files: map[string]os.FileMode{"a": 0o644, "b": 0o644, "c": 0o600},
			env: []string{"BUILDKITD_TLS_CA=TLS/a", "BUILDKITD_TLS_CERT=TLS/b", "BUILDKITD_TLS_KEY=TLS/c"}, code: 0, mode: "mtls",
			has: []string{"--tlscacert TLS/a", "--tlscert TLS/b", "--tlskey TLS/c"}},
		{name: "not a tcp address: refuses", files: allTLS(), env: []string{"BUILDKITD_ADDR=unix:///tmp/x.sock"}, code: 78,
			has: []string{"is not tcp://HOST:PORT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, mode := range tc.files {
				content := "-----BEGIN PLACEHOLDER-----\n"
				if slices.Contains(tc.empty, name) {
					content = ""
				}
				writeFile(t, filepath.Join(dir, name), content, mode)
			}
			env := []string{"BUILDKITD_TLS_DIR=" + dir}
			for _, e := range tc.env {
				env = append(env, strings.ReplaceAll(e, "TLS/", dir+"/"))
			}
			out, code := run(t, env, "bash", start, "--dry-run")
			out = strings.ReplaceAll(out, dir+"/", "TLS/")
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, out)
			}
			if tc.mode != "" && !strings.Contains(out, "mode="+tc.mode+"\n") {
				t.Errorf("want mode=%s:\n%s", tc.mode, out)
			}
			for _, h := range tc.has {
				if !strings.Contains(out, h) {
					t.Errorf("output lacks %q:\n%s", h, out)
				}
			}
			for _, h := range tc.hasnt {
				if strings.Contains(out, h) {
					t.Errorf("output has %q:\n%s", h, out)
				}
			}
		})
	}
}

func allTLS() map[string]os.FileMode {
	return map[string]os.FileMode{"ca.pem": 0o644, "server.pem": 0o644, "server-key.pem": 0o600}
}

type gcPolicy struct {
	All           bool     `toml:"all"`
	Filters       []string `toml:"filters"`
	KeepDuration  string   `toml:"keepDuration"`
	ReservedSpace string   `toml:"reservedSpace"`
	MaxUsedSpace  string   `toml:"maxUsedSpace"`
	MinFreeSpace  string   `toml:"minFreeSpace"`
}

type renderedConfig struct {
	Worker struct {
		OCI struct {
			Enabled       bool       `toml:"enabled"`
			GC            bool       `toml:"gc"`
			ReservedSpace string     `toml:"reservedSpace"`
			MaxUsedSpace  string     `toml:"maxUsedSpace"`
			MinFreeSpace  string     `toml:"minFreeSpace"`
			GCPolicy      []gcPolicy `toml:"gcpolicy"`
		} `toml:"oci"`
	} `toml:"worker"`
}

// TestBuildkitdConfigRender: the GC policy follows the size of the cache
// volume (explicit, or measured on the cache root), and a template word it
// does not know is an error.
func TestBuildkitdConfigRender(t *testing.T) {
	files := filepath.Join(harness.MustRepoRoot(t), "packer/files/buildkitd")
	render := filepath.Join(files, "buildkitd-config")
	tmpl := filepath.Join(files, "buildkitd.toml.tmpl")
	check := func(t *testing.T, out string, size int64) {
		t.Helper()
		var c renderedConfig
		text := readFile(t, out)
		if err := toml.Unmarshal([]byte(text), &c); err != nil {
			t.Fatalf("rendered config is not TOML: %v\n%s", err, text)
		}
		pct := func(p int64) string { return fmt.Sprint(size / 100 * p) }
		oci := c.Worker.OCI
		if !oci.Enabled || !oci.GC || oci.ReservedSpace != pct(10) || oci.MaxUsedSpace != pct(80) || oci.MinFreeSpace != pct(10) {
			t.Errorf("size %d: worker.oci = %+v", size, oci)
		}
		if len(oci.GCPolicy) != 4 {
			t.Fatalf("size %d: %d GC policies, want 4", size, len(oci.GCPolicy))
		}
		scratch := oci.GCPolicy[0]
		if len(scratch.Filters) != 3 || scratch.KeepDuration != "48h" || scratch.MaxUsedSpace != pct(5) {
			t.Errorf("size %d: first policy (cheap data) = %+v", size, scratch)
		}
		for i, p := range oci.GCPolicy[1:] {
			if p.ReservedSpace != pct(10) || p.MaxUsedSpace != pct(80) || p.MinFreeSpace != pct(10) {
				t.Errorf("size %d: policy %d = %+v", size, i+1, p)
			}
		}
		if !oci.GCPolicy[3].All || oci.GCPolicy[2].All {
			t.Errorf("size %d: only the last policy may collect internal data", size)
		}
		if !strings.Contains(text, fmt.Sprintf("for the %d-byte filesystem", size)) {
			t.Errorf("the rendered file does not say what it was sized for:\n%s", text)
		}
	}
	for _, size := range []int64{8_000_000_000, 200 * 1 << 30, 16 * 1 << 40} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "buildkitd.toml")
			mustRun(t, nil, "bash", render, "--template", tmpl, "--root", "/var/lib/buildkit", "--out", out, "--size", fmt.Sprint(size))
			check(t, out, size)
		})
	}
	t.Run("measured on the cache root", func(t *testing.T) {
		dir := t.TempDir()
		root := filepath.Join(dir, "cache")
		out := filepath.Join(dir, "run/buildkitd.toml")
		mustRun(t, nil, "bash", render, "--template", tmpl, "--root", root, "--out", out)
		var st syscall.Statfs_t
		if err := syscall.Statfs(root, &st); err != nil {
			t.Fatal(err)
		}
		check(t, out, int64(st.Blocks)*st.Frsize)
	})
	t.Run("errors", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.tmpl")
		writeFile(t, bad, readFile(t, tmpl)+"\n# @RESERVED@ is known, @RESERVD@ is not\n", 0o644)
		for _, tc := range []struct {
			args []string
			msg  string
		}{
			{[]string{"--template", bad, "--root", dir, "--out", dir + "/o", "--size", "1000"}, "unknown placeholder(s): "},
			{[]string{"--template", tmpl, "--root", dir, "--out", dir + "/o", "--size", "12x"}, "not a byte count: 12x"},
			{[]string{"--template", dir + "/none", "--root", dir, "--out", dir + "/o"}, "no such template"},
			{[]string{"--template", tmpl, "--out", dir + "/o"}, "usage:"},
		} {
			out, code := run(t, nil, "bash", append([]string{render}, tc.args...)...)
			if code == 0 || !strings.Contains(out, tc.msg) {
				t.Errorf("%q: exit %d, want a failure saying %q:\n%s", tc.args, code, tc.msg, out)
			}
			if _, err := os.Stat(dir + "/o"); err == nil {
				t.Errorf("%q: wrote the output anyway", tc.args)
			}
		}
	})
}
