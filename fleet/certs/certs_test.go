package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// handshake runs a real mutual TLS handshake over a loopback listener and
// returns the server's and the client's errors.
func handshake(t *testing.T, caPEM []byte, server, client Leaf, serverName string) (srvErr, cliErr error) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("bad CA PEM")
	}
	srvCert, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cliCert, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now.Add(time.Hour) }
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{srvCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, Time: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			_, err = c.Write([]byte("x")) // let the client see the result
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cliCert}, ServerName: serverName, Time: clock,
	})
	if err == nil {
		buf := make([]byte, 1)
		_, err = c.Read(buf)
		c.Close()
	}
	return <-done, err
}

func TestIssuedCertificatesDoMutualTLS(t *testing.T) {
	ca, err := NewCA("test CA", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue(Request{CommonName: "buildkitd", Usage: Server, SANs: []string{"buildkitd.internal", "127.0.0.1"}, Validity: time.Hour * 2}, now)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue(Request{CommonName: "agent", Usage: Client, Validity: 2 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"buildkitd.internal", "127.0.0.1"} {
		if s, c := handshake(t, ca.CertPEM, server, client, name); s != nil || c != nil {
			t.Errorf("handshake as %s: server %v, client %v", name, s, c)
		}
	}
	if _, c := handshake(t, ca.CertPEM, server, client, "other.internal"); c == nil {
		t.Error("the client accepted a server name not in the certificate")
	}
	rogueCA, _ := NewCA("rogue", 24*time.Hour, now)
	rogue, _ := rogueCA.Issue(Request{CommonName: "agent", Usage: Client, Validity: time.Hour * 2}, now)
	if s, _ := handshake(t, ca.CertPEM, server, rogue, "127.0.0.1"); s == nil {
		t.Error("the server accepted a client certificate from another CA")
	}
	// A client certificate cannot serve, a server certificate cannot be a client.
	if s, c := handshake(t, ca.CertPEM, client, client, "127.0.0.1"); s == nil && c == nil {
		t.Error("a client certificate was accepted as a server's")
	}
	if s, _ := handshake(t, ca.CertPEM, server, server, "127.0.0.1"); s == nil {
		t.Error("a server certificate was accepted as a client's")
	}
}

func TestIssueChecks(t *testing.T) {
	ca, _ := NewCA("test CA", time.Hour, now)
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"server without SANs", Request{CommonName: "b", Usage: Server, Validity: time.Hour}, "at least one DNS name"},
		{"bad SAN", Request{CommonName: "b", Usage: Server, SANs: []string{"bad name"}, Validity: time.Hour}, "neither an IP"},
		{"no validity", Request{CommonName: "b", Usage: Client}, "validity"},
		{"no name", Request{Usage: Client, Validity: time.Hour}, "common name"},
	} {
		if _, err := ca.Issue(tc.req, now); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	leaf, err := ca.Issue(Request{CommonName: "c", Usage: Client, Validity: 1000 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	x, _ := x509.ParseCertificate(cert.Certificate[0])
	if x.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("leaf outlives its CA: %s > %s", x.NotAfter, ca.Cert.NotAfter)
	}
	if _, err := LoadCA(leaf.CertPEM, leaf.KeyPEM); err == nil {
		t.Error("LoadCA accepted a leaf certificate")
	}
	other, _ := NewCA("other", time.Hour, now)
	if _, err := LoadCA(ca.CertPEM, other.KeyPEM); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("LoadCA with another CA's key: %v", err)
	}
}

func TestWriteDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fleet")
	files, err := WriteDir(WriteOptions{Dir: dir, ServerSANs: []string{"127.0.0.1"}, Clients: []string{"agent"}, Validity: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 6 {
		t.Errorf("wrote %q, want 6 files", files)
	}
	modes := map[string]os.FileMode{
		CAFile: 0o644, CAKeyFile: 0o600, ServerFile: 0o644, ServerKeyFile: 0o600, "agent.pem": 0o644, "agent-key.pem": 0o600,
	}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %o, want %o", name, fi.Mode().Perm(), want)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %o, want 700", fi.Mode().Perm())
	}
	caBefore, _ := os.ReadFile(filepath.Join(dir, CAFile))

	// A second run reuses the CA for a new client, and refuses to replace
	// existing files without Force.
	if _, err := WriteDir(WriteOptions{Dir: dir, Clients: []string{"agent"}, Validity: time.Hour, Now: now}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwrote agent.pem without force: %v", err)
	}
	if _, err := WriteDir(WriteOptions{Dir: dir, Clients: []string{"agent-2"}, Validity: time.Hour, Now: now}); err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(filepath.Join(dir, CAFile))
	if string(caBefore) != string(caAfter) {
		t.Error("the CA was replaced by a second run")
	}
	read := func(n string) []byte { b, _ := os.ReadFile(filepath.Join(dir, n)); return b }
	server := Leaf{read(ServerFile), read(ServerKeyFile)}
	client := Leaf{read("agent-2.pem"), read("agent-2-key.pem")}
	if s, c := handshake(t, caAfter, server, client, "127.0.0.1"); s != nil || c != nil {
		t.Errorf("a client issued by the second run fails: server %v, client %v", s, c)
	}

	for _, tc := range []struct {
		o    WriteOptions
		want string
	}{
		{WriteOptions{Dir: dir}, "nothing to issue"},
		{WriteOptions{Dir: dir, Clients: []string{"Bad Name"}}, "lower-case"},
		{WriteOptions{Dir: dir, Clients: []string{"server"}}, "not ca or server"},
		{WriteOptions{Dir: dir, Clients: []string{"a", "a"}}, "twice"},
	} {
		if _, err := WriteDir(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("WriteDir(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
	os.Remove(filepath.Join(dir, CAKeyFile))
	if _, err := WriteDir(WriteOptions{Dir: dir, Clients: []string{"x"}, Validity: time.Hour, Now: now}); err == nil || !strings.Contains(err.Error(), "both exist") {
		t.Errorf("a CA without its key: %v", err)
	}
}
