package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/fleet/certs"
	"github.com/dockhand-ci/dockhand/test/harness"
	"github.com/dockhand-ci/dockhand/test/unitfile"
)

// builderRoot is the builder image installed into a throwaway root by
// install-buildkitd.sh, with the real components as its binaries.
type builderRoot struct {
	dest string
	argv []string // buildkitd.service's ExecStart, relocated into dest
	env  []string // the unit's environment and its EnvironmentFile's settings
}

func installBuilderRoot(t *testing.T, kit *harness.Env) builderRoot {
	t.Helper()
	root := harness.MustRepoRoot(t)
	dest := filepath.Join(t.TempDir(), "root")
	out, err := exec.Command("bash", filepath.Join(root, "packer/scripts/install-buildkitd.sh"), "--destdir", dest,
		"--buildkitd", kit.Bin("buildkitd"), "--buildctl", kit.Bin("buildctl"), "--runc", kit.Bin("runc")).CombinedOutput()
	if err != nil {
		t.Fatalf("install-buildkitd.sh: %v\n%s", err, out)
	}
	unit, err := unitfile.ReadFile(filepath.Join(dest, "etc/systemd/system/buildkitd.service"))
	if err != nil {
		t.Fatal(err)
	}
	b := builderRoot{dest: dest}
	if b.argv, err = unit.ExecStart(); err != nil {
		t.Fatal(err)
	}
	b.argv[0] = filepath.Join(dest, b.argv[0])
	if b.env, err = unit.Environment(); err != nil {
		t.Fatal(err)
	}
	for _, f := range unit.Values("Service", "EnvironmentFile") {
		b.env = append(b.env, readEnvFile(t, filepath.Join(dest, strings.TrimPrefix(f, "-")))...)
	}
	// An operator's edit of the template: the test registry is plain HTTP.
	tmpl := filepath.Join(dest, "etc/buildkit/buildkitd.toml.tmpl")
	old, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, tmpl, fmt.Sprintf("%s\n[registry.%q]\n  http = true\n", old, kit.Registry.Host))
	return b
}

// readEnvFile reads the active NAME=VALUE lines of an EnvironmentFile.
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, ";") {
			env = append(env, line)
		}
	}
	return env
}

// start runs the unit's ExecStart the way systemd would, with the settings
// an operator would put in /etc/default/buildkitd pointing into the root
// (and the cache root under the kit, which unmounts what buildkitd leaves).
func (b builderRoot) start(t *testing.T, kit *harness.Env, name, addr, tlsDir string, extra ...string) (*harness.Proc, []string) {
	t.Helper()
	run := filepath.Join(shortDir(t), "run")
	env := append([]string{}, b.env...)
	env = append(env,
		"PATH="+filepath.Join(b.dest, "usr/local/sbin")+string(os.PathListSeparator)+kit.Path(),
		"BUILDKITD_BIN="+filepath.Join(b.dest, "usr/local/bin/buildkitd"),
		"BUILDKITD_RENDER="+filepath.Join(b.dest, "usr/local/libexec/dockhand/buildkitd-config"),
		"BUILDKITD_CONFIG_TEMPLATE="+filepath.Join(b.dest, "etc/buildkit/buildkitd.toml.tmpl"),
		"BUILDKITD_CONFIG="+filepath.Join(run, "buildkitd.toml"),
		"BUILDKITD_SOCKET="+filepath.Join(run, "buildkitd.sock"),
		"BUILDKITD_ROOT="+filepath.Join(kit.Dir, name+"-root"),
		"BUILDKITD_TLS_DIR="+tlsDir,
		"BUILDKITD_ADDR=tcp://"+addr,
	)
	env = append(env, extra...)
	p, err := kit.Start(name, env, b.argv...)
	if err != nil {
		t.Fatal(err)
	}
	return p, env
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitListening polls until ready succeeds or the process ends; bounded.
func waitListening(t *testing.T, p *harness.Proc, ready func() error) {
	t.Helper()
	exited := make(chan int, 1)
	go func() { exited <- p.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case code := <-exited:
			t.Fatalf("buildkitd-start exited %d before listening:\n%s", code, p.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not listening after 60s: %v\n%s", err, p.Log())
		}
	}
}

// TestPackerBuilderServesMTLS runs the builder image's buildkitd.service
// ExecStart here, against an installed root holding certificates made by
// `dockhand certs`'s code: it serves BuildKit over mutual TLS, with the GC
// policy sized from the cache root's filesystem; clients without a
// certificate of its CA are turned away; a dockhand job (real agent, dockhand
// bootstrap and shell) builds and pushes through it.
func TestPackerBuilderServesMTLS(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	b := installBuilderRoot(t, kit)

	// `dockhand certs`: a CA, the builders' certificate for the addresses
	// agents dial, and a client certificate for the agents.
	certDir := filepath.Join(t.TempDir(), "certs")
	if out, err := exec.Command(harness.DockhandBin(t), "certs", "--dir", certDir, "--server-san", "127.0.0.1,localhost",
		"--client", "agent", "--days", "1").CombinedOutput(); err != nil {
		t.Fatalf("dockhand certs: %v\n%s", err, out)
	}
	// Placed at boot into the image's TLS dir (buildkitd-tls.service's job).
	tlsDir := filepath.Join(b.dest, "etc/buildkit/tls")
	for name, mode := range map[string]os.FileMode{certs.CAFile: 0o644, certs.ServerFile: 0o644, certs.ServerKeyFile: 0o600} {
		data, err := os.ReadFile(filepath.Join(certDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tlsDir, name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	ca, cert, key := filepath.Join(certDir, certs.CAFile), filepath.Join(certDir, "agent.pem"), filepath.Join(certDir, "agent-key.pem")

	addr := freeAddr(t)
	p, _ := b.start(t, kit, "packer-buildkitd", addr, tlsDir)
	clientCert, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(caPEM)
	waitListening(t, p, func() error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr,
			&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
		if err != nil {
			return err
		}
		return c.Close()
	})
	if !strings.Contains(p.Log(), "(mtls)") {
		t.Errorf("buildkitd-start did not say it chose mutual TLS:\n%s", p.Log())
	}

	buildctl := func(args ...string) (string, error) {
		out, err := kit.Command(t.TempDir(), nil, "buildctl", append([]string{"--addr", "tcp://" + addr}, args...)...).CombinedOutput()
		return string(out), err
	}
	withCert := []string{"--tlscacert", ca, "--tlscert", cert, "--tlskey", key, "--tlsservername", "127.0.0.1"}

	// The GC policy was sized from the filesystem holding the cache root.
	out, err := buildctl(append(withCert, "debug", "workers", "--format", "{{json .}}")...)
	if err != nil {
		t.Fatalf("buildctl with the agent certificate: %v\n%s\n%s", err, out, p.Log())
	}
	var workers []struct {
		GCPolicy []struct {
			All          bool
			MaxUsedSpace int64
			MinFreeSpace int64
		}
	}
	if err := json.Unmarshal([]byte(out), &workers); err != nil || len(workers) != 1 {
		t.Fatalf("debug workers: %v\n%s", err, out)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(kit.Dir, "packer-buildkitd-root"), &st); err != nil {
		t.Fatal(err)
	}
	size := int64(st.Blocks) * st.Frsize
	policies := workers[0].GCPolicy
	if len(policies) != 4 || policies[3].MaxUsedSpace != size/100*80 || policies[3].MinFreeSpace != size/100*10 || !policies[3].All {
		t.Errorf("GC policy %+v, want 4 rules capped at 80%% of the %d-byte cache filesystem", policies, size)
	}
	t.Logf("GC policy for a %d-byte cache filesystem: %+v", size, policies)

	// Turned away: no client certificate, another CA's, and plain gRPC.
	other := filepath.Join(t.TempDir(), "other")
	if _, err := certs.WriteDir(certs.WriteOptions{Dir: other, Clients: []string{"intruder"}, Validity: time.Hour, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no client certificate":    {"--tlscacert", ca, "--tlsservername", "127.0.0.1"},
		"another CA's certificate": {"--tlscacert", ca, "--tlscert", filepath.Join(other, "intruder.pem"), "--tlskey", filepath.Join(other, "intruder-key.pem"), "--tlsservername", "127.0.0.1"},
		"plaintext":                nil,
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		out, err := exec.CommandContext(ctx, kit.Bin("buildctl"), append(append([]string{"--addr", "tcp://" + addr}, args...), "debug", "workers")...).CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("%s: buildctl reached the builder:\n%s", name, out)
		}
	}

	// A dockhand job builds through it, with the agents' certificate.
	r := newRootRig(t) // root: a test of what the builder AMI installs; its certificate files are the installer's
	ref := kit.Registry.Host + "/packer/app:1"
	command := fmt.Sprintf(`printf 'FROM %s\nRUN echo built-on-the-packer-builder > /f\n' > Dockerfile
docker buildx create --name fleet --driver remote --driver-opt cacert=%s,cert=%s,key=%s,servername=127.0.0.1 tcp://%s >/dev/null
docker buildx build --builder fleet --progress plain --push -t %s .`, kit.BaseImage, ca, cert, key, addr, ref)
	id, agent := r.start(command, nil)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" || !strings.Contains(log, "--- :docker: dockhand") {
		t.Fatalf("the job: exit %q\n%s\nbuildkitd:\n%s", f.ExitStatus, log, p.Log())
	}
	if code := manifestStatus(t, kit.Registry.Host, "packer/app", "1"); code != 200 {
		t.Errorf("pushed image: HTTP %d, want 200", code)
	}

	// And a job whose builder dockhand itself chose: the queue's remote pool
	// is this builder, reached with the agents' certificate.
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\nbuilders = [\"remote\"]\n[remote]\nendpoints = [\"tcp://%s\"]\nca = %q\ncert = %q\nkey = %q\n",
		r.state, addr, ca, cert, key))
	ref = kit.Registry.Host + "/packer/app:2"
	id, agent = r.start(fmt.Sprintf(`printf 'FROM %s\nRUN echo chosen-by-dockhand > /f\n' > Dockerfile
docker buildx build --progress plain --push -t %s .`, kit.BaseImage, ref), nil)
	f, log = r.finish(id, agent)
	t.Logf("job with dockhand's choice:\n%s", log)
	if f.ExitStatus != "0" || !strings.Contains(log, addr) {
		t.Errorf("the job with the pool in its config: exit %q, want 0 and the builder %s named\n%s", f.ExitStatus, addr, log)
	}
	if code := manifestStatus(t, kit.Registry.Host, "packer/app", "2"); code != 200 {
		t.Errorf("pushed image 2: HTTP %d, want 200", code)
	}
	out, err = buildctl(append(withCert, "du")...)
	if err != nil || !regexp.MustCompile(`(?m)^Total:\s+[1-9]`).MatchString(out) {
		t.Errorf("the packer builder holds no build cache after the job (%v):\n%s", err, out)
	}
	t.Logf("buildctl du on the packer builder after the job:\n%s", out)
}

// TestPackerBuilderRefusesTCPWithoutTLS: the same ExecStart without TLS
// material exits 78 at once and nothing listens; with BUILDKITD_PLAINTEXT=true
// it serves plain TCP.
func TestPackerBuilderRefusesTCPWithoutTLS(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{NoBaseImage: true})
	b := installBuilderRoot(t, kit)
	empty := t.TempDir()
	addr := freeAddr(t)

	p, _ := b.start(t, kit, "refusing-buildkitd", addr, empty)
	done := make(chan int, 1)
	go func() { done <- p.Wait() }()
	select {
	case code := <-done:
		if code != 78 || !strings.Contains(p.Log(), "refusing to start: no TLS material for tcp://"+addr) {
			t.Errorf("exit %d, want 78 and the refusal:\n%s", code, p.Log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("buildkitd-start without TLS material is still running:\n%s", p.Log())
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s after the refusal", addr)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Logf("dial after the refusal: %v", err)
	}

	p, _ = b.start(t, kit, "plaintext-buildkitd", addr, empty, "BUILDKITD_PLAINTEXT=true")
	waitListening(t, p, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	out, err := kit.Command(t.TempDir(), nil, "buildctl", "--addr", "tcp://"+addr, "debug", "workers").CombinedOutput()
	if err != nil || !strings.Contains(p.Log(), "WITHOUT TLS") {
		t.Errorf("plaintext asked for: buildctl %v\n%s\n%s", err, out, p.Log())
	}
}
