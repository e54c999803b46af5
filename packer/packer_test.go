package packer

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// placeholderRelease makes the build dir `make release` would, with empty
// files: `packer validate` checks that every upload exists, nothing more.
func placeholderRelease(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		for _, name := range []string{"dockhand", "dockhand-cloud"} {
			writeFile(t, filepath.Join(dir, "linux-"+arch, name), "", 0o755)
		}
	}
	return dir
}

// TestTemplatesValidate: both templates pass Debian's Packer's validate and
// fmt -check, with and without the optional files; a missing upload is an
// error naming it.
func TestTemplatesValidate(t *testing.T) {
	packer := tool(t, "packer")
	root := harness.MustRepoRoot(t)
	// validate and fmt -check are only as good as the Packer they ran on.
	if out := mustRun(t, nil, packer, "version"); !strings.Contains(out, "1.6.6") {
		t.Fatalf("%s version: %q, want Packer 1.6.6 (pinned in test/tools/install.sh)", packer, out)
	}
	build := placeholderRelease(t)
	extra := t.TempDir()
	for _, f := range []string{"buildctl", "rootlesskit", "nsc.tar.gz", "buildkit.tar.gz", "runc"} {
		writeFile(t, filepath.Join(extra, f), "x", 0o644)
	}
	agent := filepath.Join(root, "packer/agent.pkr.hcl")
	builder := filepath.Join(root, "packer/buildkitd.pkr.hcl")
	for _, tc := range []struct {
		name, template string
		vars           []string
	}{
		{"agent", agent, []string{"build_dir=" + build}},
		{"agent with buildctl, rootlesskit and nsc", agent, []string{"build_dir=" + build,
			fmt.Sprintf(`buildctl={amd64=%q, arm64=%q}`, extra+"/buildctl", extra+"/buildctl"),
			fmt.Sprintf(`rootlesskit={amd64=%q}`, extra+"/rootlesskit"),
			fmt.Sprintf(`nsc_tarball={amd64=%q}`, extra+"/nsc.tar.gz")}},
		{"buildkitd", builder, nil},
		{"buildkitd with tarballs and runc", builder, []string{
			fmt.Sprintf(`buildkit_tarball={amd64=%q, arm64=%q}`, extra+"/buildkit.tar.gz", extra+"/buildkit.tar.gz"),
			fmt.Sprintf(`runc={arm64=%q}`, extra+"/runc"), "cache_volume_size=500"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"validate"}
			for _, v := range tc.vars {
				args = append(args, "-var", v)
			}
			// From another directory: the templates find their files by path.root.
			out, code := runIn(t, t.TempDir(), nil, packer, append(args, tc.template)...)
			if code != 0 {
				t.Fatalf("packer validate %s: exit %d\n%s", tc.name, code, out)
			}
		})
	}

	// A missing upload is reported by path; -only=amazon-ebs.ARCH (as
	// docs/install.md builds one architecture) needs only that one's files.
	out, code := runIn(t, t.TempDir(), nil, packer, "validate", "-var", "build_dir="+filepath.Join(build, "nowhere"), agent)
	if code == 0 || !strings.Contains(out, "nowhere/linux-amd64") {
		t.Errorf("validate with a missing release: exit %d, want a failure naming it:\n%s", code, out)
	}
	amd64Only := t.TempDir()
	writeFile(t, filepath.Join(amd64Only, "linux-amd64/dockhand"), "", 0o755)
	for only, ok := range map[string]bool{"amazon-ebs.amd64": true, "amazon-ebs.arm64": false} {
		out, code := runIn(t, t.TempDir(), nil, packer, "validate", "-only="+only, "-var", "build_dir="+amd64Only, agent)
		if (code == 0) != ok {
			t.Errorf("validate -only=%s with only linux-amd64 built: exit %d\n%s", only, code, out)
		}
	}

	// fmt -check passes on the directory, plugins.pkr.hcl included, and
	// fails on a misformatted copy (so the check can fail).
	mustRun(t, nil, packer, "fmt", "-check", "-diff", filepath.Join(root, "packer"))
	bad := filepath.Join(t.TempDir(), "bad.pkr.hcl")
	misformatted := strings.Replace(readFile(t, agent), "= var.region", "=    var.region", 1)
	if misformatted == readFile(t, agent) {
		t.Fatal("agent.pkr.hcl has no \"= var.region\" to misformat")
	}
	writeFile(t, bad, misformatted, 0o644)
	if out, code := run(t, nil, packer, "fmt", "-check", bad); code == 0 {
		t.Errorf("fmt -check accepted a misformatted template:\n%s", out)
	}
}

// TestPluginsFile: current Packer gets the Amazon plugin from its own file,
// which Packer 1.6 cannot read (and need not: the builder is built in).
func TestPluginsFile(t *testing.T) {
	root := harness.MustRepoRoot(t)
	b := readFile(t, filepath.Join(root, "packer/plugins.pkr.hcl"))
	if !regexp.MustCompile(`(?s)required_plugins\s*\{\s*amazon\s*=\s*\{[^}]*source\s*=\s*"github.com/hashicorp/amazon"`).MatchString(b) {
		t.Errorf("plugins.pkr.hcl does not require github.com/hashicorp/amazon:\n%s", b)
	}
	for _, tmpl := range []string{"agent.pkr.hcl", "buildkitd.pkr.hcl"} {
		if strings.Contains(readFile(t, filepath.Join(root, "packer", tmpl)), "required_plugins") {
			t.Errorf("%s declares required_plugins: Packer 1.6 cannot validate it", tmpl)
		}
	}
}

// TestMakeRelease: `make release` cross-builds static dockhand and
// dockhand-cloud for linux/amd64 and linux/arm64 with the version stamped in,
// tarballs laid out for the install script, and checksums; the agent
// template validates against it and a manual install from the tarball works.
func TestMakeRelease(t *testing.T) {
	root := harness.MustRepoRoot(t)
	out := t.TempDir()
	const version = "v0.0.0-packer-test"
	mustRun(t, []string{"GOTOOLCHAIN=local"}, "make", "-C", root, "release", "BUILD_DIR="+out, "VERSION="+version)

	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for arch, machine := range machines {
		for _, name := range []string{"dockhand", "dockhand-cloud"} {
			path := filepath.Join(out, "linux-"+arch, name)
			f, err := elf.Open(path)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if f.Machine != machine {
				t.Errorf("%s: machine %v, want %v", path, f.Machine, machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("%s is dynamically linked (%v): want static", path, p.Type)
				}
			}
			f.Close()
			if !bytes.Contains([]byte(readFile(t, path)), []byte(version)) {
				t.Errorf("%s: version %s is not stamped in", path, version)
			}
		}
	}
	if got := mustRun(t, nil, filepath.Join(out, "linux-amd64/dockhand"), "version"); got != "dockhand "+version+"\n" {
		t.Errorf("dockhand version = %q", got)
	}
	if got := mustRun(t, nil, filepath.Join(out, "linux-amd64/dockhand-cloud"), "version"); got != "dockhand-cloud "+version+"\n" {
		t.Errorf("dockhand-cloud version = %q", got)
	}
	sums := mustRun(t, nil, "bash", "-c", "cd "+out+" && sha256sum -c SHA256SUMS")
	if strings.Count(sums, ": OK") != 6 {
		t.Errorf("SHA256SUMS should cover 4 binaries and 2 tarballs:\n%s", sums)
	}

	// The agent template validates against the real release.
	packer := tool(t, "packer")
	if o, code := runIn(t, t.TempDir(), nil, packer, "validate", "-var", "build_dir="+out, filepath.Join(root, "packer/agent.pkr.hcl")); code != 0 {
		t.Errorf("packer validate against the release: exit %d\n%s", code, o)
	}

	// A manual install: unpack the tarball, run its script with no paths.
	unpacked := t.TempDir()
	mustRun(t, nil, "tar", "-xzf", filepath.Join(out, "dockhand-"+version+"-linux-amd64.tar.gz"), "-C", unpacked)
	pkg := filepath.Join(unpacked, "dockhand-"+version+"-linux-amd64")
	dest := filepath.Join(t.TempDir(), "root")
	o := mustRun(t, nil, "bash", filepath.Join(pkg, "scripts/install-dockhand.sh"), "--destdir", dest, "--user", "0")
	if !strings.Contains(o, "dockhand "+version+": ") {
		t.Errorf("install from the tarball did not report the release's version:\n%s", o)
	}
	m := manifest(t, dest)
	for _, p := range []string{"/usr/local/bin/dockhand", "/usr/local/bin/dockhand-cloud", "/usr/local/libexec/dockhand/hooks/environment",
		"/etc/systemd/system/buildkite-agent.service.d/50-dockhand.conf", "/etc/dockhand/dockhand.toml"} {
		if m[p].Type != "file" {
			t.Errorf("install from the tarball: %s missing", p)
		}
	}
	if m["/usr/local/bin/dockhand"].Sum != sha(t, filepath.Join(out, "linux-amd64/dockhand")) {
		t.Error("install from the tarball did not install the release's dockhand")
	}
}

// TestDefaultConfigLoads: the shipped dockhand.toml loads with `dockhand
// doctor --config`, and so does every example in it once uncommented, each
// per-queue example taking effect for its queue.
func TestDefaultConfigLoads(t *testing.T) {
	root := harness.MustRepoRoot(t)
	bin := filepath.Join(dockhandDir(t), "dockhand")
	shipped := filepath.Join(root, "packer/files/agent/dockhand.toml")

	type setting struct {
		Key    string `json:"key"`
		Value  any    `json:"value"`
		Source string `json:"source"`
	}
	var cfg struct {
		Queue    string    `json:"queue"`
		Settings []setting `json:"settings"`
	}
	get := func(key string) setting {
		for _, s := range cfg.Settings {
			if s.Key == key {
				return s
			}
		}
		t.Fatalf("doctor --json has no %s", key)
		return setting{}
	}
	doctor := func(path, queue string) {
		t.Helper()
		env := []string{}
		if queue != "" {
			env = append(env, "BUILDKITE_AGENT_META_DATA_QUEUE="+queue)
		}
		out, code := run(t, env, bin, "doctor", "--json", "--config", path)
		if code != 0 {
			t.Fatalf("dockhand doctor --config %s (queue %q): exit %d\n%s", path, queue, code, out)
		}
		cfg.Queue, cfg.Settings = "", nil
		if err := json.Unmarshal([]byte(out), &cfg); err != nil {
			t.Fatalf("doctor --json: %v\n%s", err, out)
		}
	}
	doctor(shipped, "")
	if v := get("state_dir"); v.Value != "/var/lib/dockhand" || !strings.HasPrefix(v.Source, shipped+":") {
		t.Errorf("state_dir = %+v, want the dir install-dockhand.sh creates, set in the file", v)
	}

	// Uncomment every example line ("#key = ...", "#[section]").
	example := regexp.MustCompile(`(?m)^#([\[A-Za-z])`).ReplaceAllString(readFile(t, shipped), "$1")
	uncommented := filepath.Join(t.TempDir(), "dockhand.toml")
	writeFile(t, uncommented, example, 0o644)
	doctor(uncommented, "")
	queues := regexp.MustCompile(`(?m)^\[queue\.([a-z0-9-]+)\]`).FindAllStringSubmatch(example, -1)
	if len(queues) < 3 {
		t.Fatalf("want at least three per-queue examples, found %d", len(queues))
	}
	for _, q := range queues {
		doctor(uncommented, q[1])
		if src := get("builders").Source; cfg.Queue != q[1] || !strings.HasSuffix(src, "[queue."+q[1]+"]") {
			t.Errorf("queue %s: builders comes from %q, want its [queue.%s] section", q[1], src, q[1])
		}
	}
}

// TestInstallDocShowsTheDropIn: docs/install.md quotes the drop-in as shipped.
func TestInstallDocShowsTheDropIn(t *testing.T) {
	root := harness.MustRepoRoot(t)
	doc := readFile(t, filepath.Join(root, "docs/install.md"))
	for _, line := range strings.Split(readFile(t, filepath.Join(root, "packer/files/agent/50-dockhand.conf")), "\n") {
		if strings.HasPrefix(line, "Environment=") && !strings.Contains(doc, "\n"+line+"\n") {
			t.Errorf("docs/install.md does not show the drop-in's line\n%s", line)
		}
	}
}

// TestScriptsParse: every shell script shipped parses (bash -n), the boot
// helpers that need EC2 to run (buildkitd-volume, buildkitd-fetch-tls)
// included, and is executable.
func TestScriptsParse(t *testing.T) {
	root := harness.MustRepoRoot(t)
	scripts, _ := filepath.Glob(filepath.Join(root, "packer/scripts/*.sh"))
	for _, h := range []string{"buildkitd-start", "buildkitd-config", "buildkitd-volume", "buildkitd-fetch-tls", "buildkitd-drain", "buildkitd-lifecycle"} {
		scripts = append(scripts, filepath.Join(root, "packer/files/buildkitd", h))
	}
	if len(scripts) < 7 {
		t.Fatalf("found only %d scripts: %q", len(scripts), scripts)
	}
	for _, s := range scripts {
		if out, code := run(t, nil, "bash", "-n", s); code != 0 {
			t.Errorf("%s does not parse:\n%s", s, out)
		}
		if fi, err := os.Stat(s); err != nil || (fi.Mode()&0o111 == 0 && !strings.HasSuffix(s, "install-lib.sh")) {
			t.Errorf("%s is not executable (%v)", s, err)
		}
	}
}
