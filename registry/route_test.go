package registry

import (
	"slices"
	"testing"
)

func TestResolve(t *testing.T) {
	settings := Settings{
		Static: map[string]string{
			"ghcr.io":        "/etc/dockhand/ghcr.json",
			"docker.io":      "/etc/dockhand/hub.json",
			"127.0.0.1:5000": "/etc/dockhand/local.json",
			// A static entry for an ECR host loses to ECR (first match wins).
			"123456789012.dkr.ecr.us-east-1.amazonaws.com": "/etc/dockhand/never.json",
		},
		ECRAliases: map[string]string{
			"127.0.0.1:6000":         "123456789012.dkr.ecr.us-east-1.amazonaws.com",
			"registry.internal:5000": "210987654321.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
		},
		Packages: []string{"acme/images", "acme/base"},
	}
	for _, tc := range []struct {
		in                    string
		source                Source
		host, account, region string
		aliasOf, file, aud    string
	}{
		{in: "123456789012.dkr.ecr.us-east-1.amazonaws.com", source: SourceECR, host: "123456789012.dkr.ecr.us-east-1.amazonaws.com", account: "123456789012", region: "us-east-1"},
		{in: "https://123456789012.dkr.ecr.eu-central-1.amazonaws.com/v2/", source: SourceECR, host: "123456789012.dkr.ecr.eu-central-1.amazonaws.com", account: "123456789012", region: "eu-central-1"},
		{in: "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", source: SourceECR, host: "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", account: "123456789012", region: "cn-north-1"},
		{in: "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", source: SourceNone, host: "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example"},
		{in: "public.ecr.aws", source: SourceECRPublic, host: "public.ecr.aws", region: "us-east-1"},
		{in: "127.0.0.1:6000", source: SourceECR, host: "127.0.0.1:6000", account: "123456789012", region: "us-east-1", aliasOf: "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{in: "http://127.0.0.1:6000/v2/", source: SourceECR, host: "127.0.0.1:6000", account: "123456789012", region: "us-east-1", aliasOf: "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{in: "Registry.Internal:5000", source: SourceECR, host: "registry.internal:5000", account: "210987654321", region: "us-gov-west-1", aliasOf: "210987654321.dkr.ecr-fips.us-gov-west-1.amazonaws.com"},
		{in: "127.0.0.1:6001", source: SourceNone, host: "127.0.0.1:6001"},
		{in: "nscr.io", source: SourceNamespace, host: "nscr.io"},
		{in: "r.tenant.nscluster.cloud", source: SourceNamespace, host: "r.tenant.nscluster.cloud"},
		{in: "packages.buildkite.com", source: SourcePackages, host: "packages.buildkite.com", aud: "https://packages.buildkite.com/acme/images"},
		{in: "https://packages.buildkite.com/acme/base", source: SourcePackages, host: "packages.buildkite.com", aud: "https://packages.buildkite.com/acme/images"},
		{in: "ghcr.io", source: SourceStatic, host: "ghcr.io", file: "/etc/dockhand/ghcr.json"},
		{in: "https://index.docker.io/v1/", source: SourceStatic, host: "index.docker.io", file: "/etc/dockhand/hub.json"},
		{in: "registry-1.docker.io", source: SourceStatic, host: "registry-1.docker.io", file: "/etc/dockhand/hub.json"},
		{in: "127.0.0.1:5000", source: SourceStatic, host: "127.0.0.1:5000", file: "/etc/dockhand/local.json"},
		{in: "quay.io", source: SourceNone, host: "quay.io"},
		{in: "", source: SourceNone},
	} {
		r := Resolve(tc.in, settings)
		if r.Source != tc.source || r.Host != tc.host || r.Registry.Account != tc.account || r.Registry.Region != tc.region ||
			r.AliasOf != tc.aliasOf || r.File != tc.file || r.Audience != tc.aud {
			t.Errorf("Resolve(%q) = %+v, want source %s host %q account %q region %q alias %q file %q audience %q",
				tc.in, r, tc.source, tc.host, tc.account, tc.region, tc.aliasOf, tc.file, tc.aud)
		}
	}
}

func TestResolvePackagesWithoutRegistry(t *testing.T) {
	r := Resolve("packages.buildkite.com", Settings{})
	if r.Source != SourceNone || r.Note == "" {
		t.Errorf("Resolve = %+v, want none with a note", r)
	}
}

func TestResolveNSCRAlias(t *testing.T) {
	s := Settings{NSCRAliases: map[string]string{"registry.internal:5001": "nscr.io"}}
	got := Resolve("https://registry.internal:5001/v2/", s)
	if got.Source != SourceNamespace || got.AliasOf != "nscr.io" || got.Host != "registry.internal:5001" {
		t.Errorf("Resolve(alias) = %+v, want the Namespace route for nscr.io", got)
	}
	if got := Resolve("registry.internal:5002", s); got.Source != SourceNone {
		t.Errorf("an unlisted host = %+v, want none", got)
	}
}

func TestNamedHosts(t *testing.T) {
	s := Settings{
		Static:      map[string]string{"ghcr.io": "/etc/ghcr.json", "docker.io": "/etc/hub.json"},
		ECRAliases:  map[string]string{"registry.internal:5000": "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		NSCRAliases: map[string]string{"mirror.internal": "nscr.io"},
		Packages:    []string{"acme/images"},
	}
	got := NamedHosts(s, "https://210987654321.dkr.ecr.eu-west-1.amazonaws.com", "plain.example:5000", "")
	want := []string{
		"123456789012.dkr.ecr.us-east-1.amazonaws.com", "210987654321.dkr.ecr.eu-west-1.amazonaws.com",
		"ecr-public.aws.com", "ghcr.io", "https://index.docker.io/v1/", "mirror.internal", "nscr.io",
		"packages.buildkite.com", "public.ecr.aws", "registry.internal:5000",
	}
	if !slices.Equal(got, want) {
		t.Errorf("NamedHosts =\n %q\nwant\n %q", got, want)
	}
	if got := NamedHosts(Settings{}); !slices.Equal(got, []string{"ecr-public.aws.com", "nscr.io", "public.ecr.aws"}) {
		t.Errorf("NamedHosts of no settings = %q", got)
	}
}
