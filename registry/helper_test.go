package registry

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"https://index.docker.io/v1/":         "index.docker.io",
		"127.0.0.1:5000":                      "127.0.0.1:5000",
		"http://127.0.0.1:5000/v2/":           "127.0.0.1:5000",
		"Registry.Example.com":                "registry.example.com",
		"123.dkr.ecr.us-east-1.amazonaws.com": "123.dkr.ecr.us-east-1.amazonaws.com",
	} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}

func serve(t *testing.T, h *Helper, action, input string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Serve(h, []string{action}, strings.NewReader(input), &out)
	return out.String(), err
}

func TestHelperProtocolRoundTrip(t *testing.T) {
	dir := t.TempDir()
	h := NewHelper(dir)
	if _, err := serve(t, h, "store", `{"ServerURL":"127.0.0.1:5000","Username":"ci","Secret":"s3cret-value"}`); err != nil {
		t.Fatal(err)
	}
	out, err := serve(t, h, "get", "http://127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"Username":"ci"`) || !strings.Contains(out, `"Secret":"s3cret-value"`) {
		t.Errorf("get = %s", out)
	}
	fi, err := os.Stat(filepath.Join(dir, StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("store mode = %o, want 600", fi.Mode().Perm())
	}
	if out, _ := serve(t, h, "list", ""); !strings.Contains(out, `"127.0.0.1:5000":"ci"`) {
		t.Errorf("list = %s", out)
	}
	if _, err := serve(t, h, "erase", "127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	if _, err := serve(t, h, "get", "127.0.0.1:5000"); err == nil || err.Error() != "credentials not found in native keychain" {
		t.Errorf("get after erase: %v, want the standard not-found", err)
	}
}

func TestHelperIsJobScoped(t *testing.T) {
	a, b := NewHelper(t.TempDir()), NewHelper(t.TempDir())
	if _, err := serve(t, a, "store", `{"ServerURL":"r.example:5000","Username":"u","Secret":"p"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := serve(t, b, "get", "r.example:5000"); err == nil {
		t.Error("another job's helper served the login")
	}
	outside := NewHelper("")
	if _, err := serve(t, outside, "store", `{"ServerURL":"r.example:5000","Username":"u","Secret":"p"}`); err == nil {
		t.Error("store outside a job succeeded")
	}
	if _, err := serve(t, outside, "get", "r.example:5000"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("get outside a job = %v, want not found", err)
	}
}
