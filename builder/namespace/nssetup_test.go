package namespace

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
)

// testCert is a PEM client certificate valid until notAfter, followed by
// its key, as nsc writes client_cert_and_key.pem.
func testCert(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "tenant"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
}

func TestCertNotAfter(t *testing.T) {
	end := time.Now().Add(90 * time.Minute).Truncate(time.Second).UTC()
	cert := testCert(t, end)
	certBlock, rest := pem.Decode(cert)
	for _, tc := range []struct {
		name string
		pem  []byte
		ok   bool
	}{
		{"certificate then key", cert, true},
		{"key then certificate", append(rest, pem.EncodeToMemory(certBlock)...), true},
		{"a key alone", rest, false},
		{"not PEM", []byte("PEM client.pem\n"), false},
		{"a certificate that is not one", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}), false},
	} {
		got, err := certNotAfter(tc.pem)
		if tc.ok && (err != nil || !got.Equal(end)) || !tc.ok && err == nil {
			t.Errorf("%s: %v, %v; want %v (ok %v)", tc.name, got, err, end, tc.ok)
		}
	}
}

// TestNamespaceSetupSharedByTheHost: the first job on a host runs nsc's
// setup (2 + one-per-platform API calls, a new client certificate) with
// its state in a 0700 host dir; the next jobs write that builder into
// their own docker config without running nsc at all, until the client
// certificate (or the tenant token) is within the margin of its end; a
// dropped setup (its builder did not answer) is set up anew.
func TestNamespaceSetupSharedByTheHost(t *testing.T) {
	nsc := fakeNSC(t)
	dir := t.TempDir()
	_, base := nsBackend(t, nsc, dir, "linux/amd64", "linux/arm64")
	certFile := filepath.Join(dir, "client.pem")
	calls := filepath.Join(dir, "calls.log")
	// The backend with a call log and a real client certificate.
	data, _ := os.ReadFile(strings.TrimPrefix(base.Env[0], "FAKENSC_BACKEND="))
	os.WriteFile(strings.TrimPrefix(base.Env[0], "FAKENSC_BACKEND="), []byte(strings.Replace(string(data), "{", `{"log":"`+calls+`",`, 1)), 0o600)
	setCert := func(end time.Time) {
		cert := testCert(t, end)
		os.WriteFile(certFile, cert, 0o600)
		os.WriteFile(filepath.Join(dir, "client-key.pem"), nil, 0o600)
	}
	setCert(time.Now().Add(24 * time.Hour))
	state := filepath.Join(dir, "state")
	setups := func() int {
		data, _ := os.ReadFile(calls)
		return strings.Count(string(data), "nsc docker buildx setup")
	}
	job := func(name string) (*Namespace, buildx.Builder) {
		t.Helper()
		n := base
		n.JobDir = filepath.Join(dir, name)
		n.DockerConfig = filepath.Join(n.JobDir, "docker")
		os.MkdirAll(n.DockerConfig, 0o700)
		n.Tokens, n.Setups = HostTenantTokens(state), HostSetups(state)
		b, _, err := n.SetUp(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return &n, b
	}

	first, b1 := job("job1")
	if setups() != 1 || first.Reused || first.SetupNote != "set the builder up, shared with the host's jobs" {
		t.Fatalf("first job: %d setups, reused %v, %q", setups(), first.Reused, first.SetupNote)
	}
	if !strings.HasPrefix(b1.Nodes[0].TLS.Cert, filepath.Join(state, "namespace", "buildx")+"/") {
		t.Errorf("nsc's state is not in the host's dir: %s", b1.Nodes[0].TLS.Cert)
	}
	for path, mode := range map[string]os.FileMode{filepath.Dir(filepath.Dir(b1.Nodes[0].TLS.Cert)): 0o700, b1.Nodes[0].TLS.Cert: 0o600,
		filepath.Join(state, "namespace", "setup-tnt.json"): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %o", path, fi.Mode(), err, mode)
		}
	}

	second, b2 := job("job2")
	if setups() != 1 || !second.Reused || !strings.HasPrefix(second.SetupNote, "builder setup shared by the host's jobs, valid ") {
		t.Errorf("second job: %d setups, reused %v, %q; want the first job's setup", setups(), second.Reused, second.SetupNote)
	}
	onDisk, err := buildx.ReadInstance(second.DockerConfig, "namespace", buildx.NamespaceName)
	if err != nil || len(onDisk.Nodes) != 2 || !reflect.DeepEqual(onDisk.Nodes, b1.Nodes) || !reflect.DeepEqual(b2.Nodes, b1.Nodes) {
		t.Errorf("second job's builder %+v (%v), want the first's %+v", onDisk, err, b1)
	}

	// A certificate about to end: set up anew.
	setCert(time.Now().Add(5 * time.Minute))
	job("job3") // still the shared one: its certificate was valid for a day
	os.Remove(filepath.Join(state, "namespace", "setup-tnt.json"))
	job("job4")
	if n, _ := job("job5"); setups() != 3 || n.Reused {
		t.Errorf("a certificate 5 minutes from its end: %d setups, reused %v; want every job to set up", setups(), n.Reused)
	}
	setCert(time.Now().Add(24 * time.Hour))
	job("job6")
	second.Setups.Drop("tnt", false)
	if n, _ := job("job7"); setups() != 5 || n.Reused {
		t.Errorf("after Drop: %d setups, reused %v", setups(), n.Reused)
	}
}
