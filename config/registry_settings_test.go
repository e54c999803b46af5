package config

import (
	"maps"
	"strings"
	"testing"
)

func TestRegistrySettingsParse(t *testing.T) {
	c, err := Parse(testPath, []byte(`[registry]
static = ["GHCR.io=/etc/dockhand/ghcr.json", "127.0.0.1:5000 = /etc/dockhand/local.json"]
ecr_aliases = ["registry.internal:5000=123456789012.dkr.ecr.us-east-1.amazonaws.com"]
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Registry.StaticCredentials(), map[string]string{
		"ghcr.io": "/etc/dockhand/ghcr.json", "127.0.0.1:5000": "/etc/dockhand/local.json",
	}; !maps.Equal(got, want) {
		t.Errorf("StaticCredentials() = %v, want %v", got, want)
	}
	if got, want := c.Registry.ECRAliasMap(), map[string]string{
		"registry.internal:5000": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
	}; !maps.Equal(got, want) {
		t.Errorf("ECRAliasMap() = %v, want %v", got, want)
	}
	if s := c.Sources["registry.ecr_aliases"].String(); s != testPath+":3" {
		t.Errorf("source of registry.ecr_aliases = %s", s)
	}
}

func TestRegistrySettingsErrors(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{`registry.static = ["ghcr.io"]`, `registry.static: "ghcr.io" is not HOST=FILE`},
		{`registry.static = ["=/x"]`, `is not HOST=FILE`},
		{`registry.static = ["ghcr.io=relative.json"]`, `"relative.json" is not an absolute path`},
		{`registry.static = ["https://ghcr.io=/x.json"]`, `is not a registry host[:port]`},
		{`registry.static = ["ghcr.io/org=/x.json"]`, `is not a registry host[:port]`},
		{`registry.static = ["ghcr.io=/a", "GHCR.IO=/b"]`, `host "ghcr.io" is listed twice`},
		{`registry.static = "ghcr.io=/a"`, `expected an array of strings`},
		{`registry.ecr_aliases = ["r:5000=ghcr.io"]`, `"ghcr.io" is not an ECR private registry host`},
		{`registry.ecr_aliases = ["r:5000=123456789012.dkr.ecr.us-east-1.amazonaws.com.evil"]`, `is not an ECR private registry host`},
		{`registry.ecr_aliases = ["public.ecr.aws=123456789012.dkr.ecr.us-east-1.amazonaws.com"]`, `is already a known registry`},
		{`registry.ecr_aliases = ["r=123456789012.dkr.ecr.us-east-1.amazonaws.com", "R=210987654321.dkr.ecr.us-east-1.amazonaws.com"]`, `host "r" is listed twice`},
		{`registry.nscr_aliases = ["r:5001=ghcr.io"]`, `"ghcr.io" is not a Namespace registry host`},
		{`registry.nscr_aliases = ["nscr.io=nscr.io"]`, `is already a known registry`},
		{`registry.nscr_aliases = ["r=nscr.io", "R=nscr.io"]`, `host "r" is listed twice`},
		{`registry.ecr_registries = ["ghcr.io"]`, `registry.ecr_registries: "ghcr.io" is not an ECR private registry host`},
		{`registry.ecr_registries = ["https://123456789012.dkr.ecr.us-east-1.amazonaws.com/repo"]`, `is not an ECR private registry host`},
		{`registry.ecr_registries = ["123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012.DKR.ecr.us-east-1.amazonaws.com"]`, `is listed twice`},
		{`registry.statik = []`, `did you mean "registry.static"?`},
	} {
		_, err := Parse(testPath, []byte(tc.data+"\n"), "")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), testPath+":1") {
			t.Errorf("Parse(%s) = %v, want an error at line 1 containing %q", tc.data, err, tc.want)
		}
	}
}
