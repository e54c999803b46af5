package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "buildkit")
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"certs", "--dir", dir, "--server-san", "buildkitd.internal,10.0.1.5", "--client", "agent"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if n := strings.Count(out.String(), "wrote "); n != 6 {
		t.Errorf("stdout lists %d files, want 6:\n%s", n, out.String())
	}
	server, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(server.Certificate[0])
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "buildkitd.internal" || len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != "10.0.1.5" {
		t.Errorf("server SANs = %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	for name, mode := range map[string]os.FileMode{"ca-key.pem": 0o600, "agent-key.pem": 0o600, "agent.pem": 0o644} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %o", name, err, fi.Mode().Perm(), mode)
		}
	}
	// A second agent later, from the same CA; the first is not replaced.
	out.Reset()
	if code := run(t.Context(), []string{"certs", "--dir", dir, "--client", "agent-2"}, &out, &errb); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, errb.String())
	}
	if strings.Contains(out.String(), "ca.pem") || !strings.Contains(out.String(), "agent-2.pem") {
		t.Errorf("second run wrote:\n%s", out.String())
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--client", "a"}, 2, "--dir is required"},
		{[]string{"--dir", dir}, 2, "give --server-san, --client, or both"},
		{[]string{"--dir", dir, "--client", "agent"}, 1, "already exists"},
		{[]string{"--dir", dir, "--client", "x", "--days", "0"}, 2, "at least 1"},
	} {
		errb.Reset()
		code := run(t.Context(), append([]string{"certs"}, tc.args...), &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("certs %q: exit %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}
