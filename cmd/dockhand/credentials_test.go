package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDoctorChecksCredentials(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "ghcr.json")
	os.WriteFile(secretFile, []byte(`{"username":"bot","password":"doctor-must-not-print-this"}`), 0o600)
	config := filepath.Join(dir, "dockhand.toml")
	os.WriteFile(config, []byte(`state_dir = "`+filepath.Join(dir, "state")+`"
[packages]
registries = ["acme/images", "acme/base"]
[registry]
static = ["ghcr.io=`+secretFile+`", "open.example=`+filepath.Join(dir, "missing.json")+`"]
`), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"dockhand", "doctor", "--config", config, "--registry", "quay.io"},
		[]string{"HOME=" + dir, "PATH=/usr/bin:/bin"}, stdio{in: strings.NewReader(""), out: &out, err: &errb})
	if code != 0 {
		t.Fatalf("doctor exited %d: %s", code, errb.String())
	}
	text := out.String()
	for _, want := range []string{
		"# credentials (docker-credential-dockhand)",
		`ghcr.io                 ok         static: user "bot", file ` + secretFile,
		"open.example            FAIL       static: registry.static: stat " + filepath.Join(dir, "missing.json"),
		"packages.buildkite.com  FAIL       buildkite-packages: an agent OIDC token can only be requested inside a Buildkite job",
		"quay.io                 anonymous  none: no credentials",
		"served with an OIDC token for acme/images only",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text+errb.String(), "doctor-must-not-print-this") {
		t.Errorf("doctor printed a password")
	}
}

func TestConfiguredRegistries(t *testing.T) {
	var out, errb bytes.Buffer
	dir := t.TempDir()
	config := filepath.Join(dir, "c.toml")
	os.WriteFile(config, []byte(`state_dir = "`+dir+`"
cache.repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/cache"
[registry]
ecr_aliases = ["Reg.Internal:5000=123456789012.dkr.ecr.us-east-1.amazonaws.com"]
`), 0o600)
	run([]string{"dockhand", "doctor", "--config", config, "--registry", "reg.internal:5000"}, []string{"HOME=" + dir},
		stdio{in: strings.NewReader(""), out: &out, err: &errb})
	text := out.String()
	i := strings.Index(text, "reg.internal:5000 ")
	j := strings.Index(text, "123456789012.dkr.ecr.us-east-1.amazonaws.com ")
	if i < 0 || j < 0 || strings.Count(text, "reg.internal:5000 ") != 1 {
		t.Errorf("want the alias once and the cache repository's registry:\n%s", text)
	}
	if !strings.Contains(text, "ecr (alias of 123456789012.dkr.ecr.us-east-1.amazonaws.com)") {
		t.Errorf("the alias is not explained:\n%s", text)
	}
}
