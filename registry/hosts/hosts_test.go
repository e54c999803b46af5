package hosts

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	ecr := func(host, account, region, suffix string, fips, dual bool) Registry {
		return Registry{Kind: ECR, Host: host, Account: account, Region: region, Suffix: suffix, FIPS: fips, DualStack: dual}
	}
	other := func(host string) Registry { return Registry{Kind: Other, Host: host} }
	for _, tc := range []struct {
		in   string
		want Registry
	}{
		// ECR private, commercial partition, every form docker may pass.
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com", ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1", "amazonaws.com", false, false)},
		{"https://123456789012.dkr.ecr.us-east-1.amazonaws.com", ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1", "amazonaws.com", false, false)},
		{"http://123456789012.dkr.ecr.us-east-1.amazonaws.com", ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1", "amazonaws.com", false, false)},
		{"https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/", ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1", "amazonaws.com", false, false)},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/my/repo:tag", ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1", "amazonaws.com", false, false)},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com:443", ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com:443", "123456789012", "us-east-1", "amazonaws.com", false, false)},
		{"  123456789012.dkr.ecr.eu-west-2.amazonaws.com\n", ecr("123456789012.dkr.ecr.eu-west-2.amazonaws.com", "123456789012", "eu-west-2", "amazonaws.com", false, false)},
		{"123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM", ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1", "amazonaws.com", false, false)},
		{"HTTPS://123456789012.dkr.ecr.us-east-1.amazonaws.com", ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1", "amazonaws.com", false, false)},
		{"https://user@123456789012.dkr.ecr.us-east-1.amazonaws.com", ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1", "amazonaws.com", false, false)},
		{"000000000000.dkr.ecr.ap-southeast-4.amazonaws.com", ecr("000000000000.dkr.ecr.ap-southeast-4.amazonaws.com", "000000000000", "ap-southeast-4", "amazonaws.com", false, false)},
		{"123456789012.dkr.ecr.us_test_1.amazonaws.com", ecr("123456789012.dkr.ecr.us_test_1.amazonaws.com", "123456789012", "us_test_1", "amazonaws.com", false, false)},
		// FIPS.
		{"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", ecr("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "123456789012", "us-gov-west-1", "amazonaws.com", true, false)},
		{"123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", ecr("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", "123456789012", "us-east-1", "amazonaws.com", true, false)},
		{"123456789012.dkr-ecr-fips.us-east-1.on.aws", ecr("123456789012.dkr-ecr-fips.us-east-1.on.aws", "123456789012", "us-east-1", "on.aws", true, true)},
		// Dual-stack, commercial and China.
		{"123456789012.dkr-ecr.us-west-2.on.aws", ecr("123456789012.dkr-ecr.us-west-2.on.aws", "123456789012", "us-west-2", "on.aws", false, true)},
		{"123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn", ecr("123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn", "123456789012", "cn-north-1", "on.amazonwebservices.com.cn", false, true)},
		{"123456789012.dkr.ecr.us-west-2.on.aws", ecr("123456789012.dkr.ecr.us-west-2.on.aws", "123456789012", "us-west-2", "on.aws", false, true)},
		// China, European Sovereign Cloud, ISO partitions.
		{"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", ecr("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "123456789012", "cn-north-1", "amazonaws.com.cn", false, false)},
		{"123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn", ecr("123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn", "123456789012", "cn-northwest-1", "amazonaws.com.cn", false, false)},
		{"123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", ecr("123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", "123456789012", "eusc-de-east-1", "amazonaws.eu", false, false)},
		{"123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", ecr("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "123456789012", "us-iso-east-1", "c2s.ic.gov", false, false)},
		{"123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", ecr("123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "123456789012", "us-isob-east-1", "sc2s.sgov.gov", false, false)},
		{"123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", ecr("123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", "123456789012", "eu-isoe-west-1", "cloud.adc-e.uk", false, false)},
		{"123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", ecr("123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", "123456789012", "us-isof-south-1", "csp.hci.ic.gov", false, false)},

		// Look-alikes and near misses are not ECR.
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", other("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example")},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com.", other("123456789012.dkr.ecr.us-east-1.amazonaws.com.")},
		{"evil.123456789012.dkr.ecr.us-east-1.amazonaws.com", other("evil.123456789012.dkr.ecr.us-east-1.amazonaws.com")},
		{"x123456789012.dkr.ecr.us-east-1.amazonaws.com", other("x123456789012.dkr.ecr.us-east-1.amazonaws.com")},
		{"12345678901.dkr.ecr.us-east-1.amazonaws.com", other("12345678901.dkr.ecr.us-east-1.amazonaws.com")},
		{"1234567890123.dkr.ecr.us-east-1.amazonaws.com", other("1234567890123.dkr.ecr.us-east-1.amazonaws.com")},
		{"12345678901a.dkr.ecr.us-east-1.amazonaws.com", other("12345678901a.dkr.ecr.us-east-1.amazonaws.com")},
		{"dkr.ecr.us-east-1.amazonaws.com", other("dkr.ecr.us-east-1.amazonaws.com")},
		{"123456789012.dkr.ecr.amazonaws.com", other("123456789012.dkr.ecr.amazonaws.com")},
		{"123456789012.dkr.ecr..amazonaws.com", other("123456789012.dkr.ecr..amazonaws.com")},
		{"123456789012.dkr.ecr.-us-east-1.amazonaws.com", other("123456789012.dkr.ecr.-us-east-1.amazonaws.com")},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.org", other("123456789012.dkr.ecr.us-east-1.amazonaws.org")},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.co", other("123456789012.dkr.ecr.us-east-1.amazonaws.co")},
		{"123456789012.dkr.ecr.us-east-1.notamazonaws.com", other("123456789012.dkr.ecr.us-east-1.notamazonaws.com")},
		{"123456789012.dkr.ecr.us-east-1.aws", other("123456789012.dkr.ecr.us-east-1.aws")},
		{"123456789012.dkr.ecrx.us-east-1.amazonaws.com", other("123456789012.dkr.ecrx.us-east-1.amazonaws.com")},
		{"123456789012.dkr.ecr-fipsx.us-east-1.amazonaws.com", other("123456789012.dkr.ecr-fipsx.us-east-1.amazonaws.com")},
		{"123456789012.dkrecr.us-east-1.amazonaws.com", other("123456789012.dkrecr.us-east-1.amazonaws.com")},
		{"123456789012.dkr_ecr.us-east-1.amazonaws.com", other("123456789012.dkr_ecr.us-east-1.amazonaws.com")},
		{"123456789012.ecr.us-east-1.amazonaws.com", other("123456789012.ecr.us-east-1.amazonaws.com")},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com.cn.evil", other("123456789012.dkr.ecr.us-east-1.amazonaws.com.cn.evil")},
		{"123456789012.dkr.ecr.us.east.1.amazonaws.com", other("123456789012.dkr.ecr.us.east.1.amazonaws.com")},
		{"https://evil.example/123456789012.dkr.ecr.us-east-1.amazonaws.com", other("evil.example")},
		{"https://123456789012.dkr.ecr.us-east-1.amazonaws.com@evil.example", other("evil.example")},
		{"ftp://123456789012.dkr.ecr.us-east-1.amazonaws.com", other("")},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com\\@evil", other("")},
		{"api.ecr.us-east-1.amazonaws.com", other("api.ecr.us-east-1.amazonaws.com")},

		// ECR Public.
		{"public.ecr.aws", Registry{Kind: ECRPublic, Host: "public.ecr.aws", Region: "us-east-1"}},
		{"https://public.ecr.aws/v2/", Registry{Kind: ECRPublic, Host: "public.ecr.aws", Region: "us-east-1"}},
		{"public.ecr.aws/nginx/nginx", Registry{Kind: ECRPublic, Host: "public.ecr.aws", Region: "us-east-1"}},
		{"PUBLIC.ECR.AWS", Registry{Kind: ECRPublic, Host: "public.ecr.aws", Region: "us-east-1"}},
		{"ecr-public.aws.com", Registry{Kind: ECRPublic, Host: "ecr-public.aws.com", Region: "us-east-1", DualStack: true}},
		{"https://ecr-public.aws.com/foo", Registry{Kind: ECRPublic, Host: "ecr-public.aws.com", Region: "us-east-1", DualStack: true}},
		{"public.ecr.aws.evil.example", other("public.ecr.aws.evil.example")},
		{"xpublic.ecr.aws", other("xpublic.ecr.aws")},
		{"evil.public.ecr.aws", other("evil.public.ecr.aws")},
		{"public-ecr.aws", other("public-ecr.aws")},

		// Namespace.
		{"nscr.io", Registry{Kind: Namespace, Host: "nscr.io"}},
		{"https://nscr.io/v2/", Registry{Kind: Namespace, Host: "nscr.io"}},
		{"nscr.io/abc123/app", Registry{Kind: Namespace, Host: "nscr.io"}},
		{"eu.nscr.io", Registry{Kind: Namespace, Host: "eu.nscr.io"}},
		{"registry.tenant.nscluster.cloud", Registry{Kind: Namespace, Host: "registry.tenant.nscluster.cloud"}},
		{"r.eu.namespace.systems", Registry{Kind: Namespace, Host: "r.eu.namespace.systems"}},
		{"nscr.io.evil.example", other("nscr.io.evil.example")},
		{"evilnscr.io", other("evilnscr.io")},
		{"nscluster.cloud", other("nscluster.cloud")},
		{"..nscr.io", other("..nscr.io")},
		{"namespace.systems", other("namespace.systems")},

		// Buildkite Package Registries.
		{"packages.buildkite.com", Registry{Kind: BuildkitePackages, Host: "packages.buildkite.com"}},
		{"https://packages.buildkite.com/acme/images", Registry{Kind: BuildkitePackages, Host: "packages.buildkite.com"}},
		{"packages.buildkite.com/acme/images/app:1", Registry{Kind: BuildkitePackages, Host: "packages.buildkite.com"}},
		{"packages.buildkite.com.evil.example", other("packages.buildkite.com.evil.example")},
		{"evilpackages.buildkite.com", other("evilpackages.buildkite.com")},
		{"buildkite.com", other("buildkite.com")},

		// Everything else.
		{"https://index.docker.io/v1/", other("index.docker.io")},
		{"127.0.0.1:5000", other("127.0.0.1:5000")},
		{"http://127.0.0.1:5000/v2/", other("127.0.0.1:5000")},
		{"[::1]:5000", other("[::1]:5000")},
		{"ghcr.io", other("ghcr.io")},
		{"Registry.Example.com", other("registry.example.com")},
		{"", other("")},
		{"   ", other("")},
		{"https://", other("")},
		{"https:///path", other("")},
		{"a b", other("")},
		{"%zz", other("")},
	} {
		if got := Parse(tc.in); got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestCacheKey(t *testing.T) {
	for in, want := range map[string]string{
		"123456789012.dkr.ecr.us-east-1.amazonaws.com":      "ecr/123456789012/us-east-1",
		"123456789012.dkr.ecr-fips.us-east-1.amazonaws.com": "ecr/123456789012/us-east-1",
		"123456789012.dkr-ecr.us-east-1.on.aws":             "ecr/123456789012/us-east-1",
		"123456789012.dkr.ecr.us-east-2.amazonaws.com":      "ecr/123456789012/us-east-2",
		"public.ecr.aws":                 "ecr-public",
		"ecr-public.aws.com":             "ecr-public",
		"nscr.io":                        "",
		"127.0.0.1:5000":                 "",
		"packages.buildkite.com/acme/im": "",
	} {
		if got := Parse(in).CacheKey(); got != want {
			t.Errorf("Parse(%q).CacheKey() = %q, want %q", in, got, want)
		}
	}
}

func TestECRHostRoundTrips(t *testing.T) {
	for _, tc := range []struct{ account, region, suffix, want string }{
		{"123456789012", "us-east-1", "", "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{"123456789012", "cn-north-1", "", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"},
		{"123456789012", "us-west-2", "on.aws", "123456789012.dkr-ecr.us-west-2.on.aws"},
		{"123456789012", "us-iso-east-1", "c2s.ic.gov", "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov"},
	} {
		got := ECRHost(tc.account, tc.region, tc.suffix)
		if got != tc.want {
			t.Errorf("ECRHost(%q, %q, %q) = %q, want %q", tc.account, tc.region, tc.suffix, got, tc.want)
		}
		if r := Parse(got); r.Kind != ECR || r.Account != tc.account || r.Region != tc.region {
			t.Errorf("Parse(ECRHost(...)) = %+v", r)
		}
	}
}

// FuzzParse: whatever the input, Parse does not panic, and what it calls
// ECR is a whole, well-formed ECR hostname it can rebuild.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"123456789012.dkr.ecr.us-east-1.amazonaws.com", "https://123456789012.dkr-ecr-fips.us-east-1.on.aws/v2/",
		"public.ecr.aws", "nscr.io", "a.nscr.io", "packages.buildkite.com/a/b", "127.0.0.1:5000", "https://index.docker.io/v1/",
		"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil", "https://x@123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn:443/p?q#f",
		"[::1]:5000", "%", "", "http://[", "123456789012.dkr.ecr.us_x.csp.hci.ic.gov",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := Parse(in)
		if r.Host != strings.ToLower(r.Host) {
			t.Fatalf("Parse(%q).Host = %q is not lower case", in, r.Host)
		}
		switch r.Kind {
		case ECR:
			if !isAccount(r.Account) || !isRegion(r.Region) || !isECRSuffix(r.Suffix) {
				t.Fatalf("Parse(%q) = %+v: malformed ECR parts", in, r)
			}
			hostname := r.Host
			if i := strings.LastIndexByte(hostname, ':'); i >= 0 {
				hostname = hostname[:i]
			}
			sep := ".dkr.ecr"
			if !strings.Contains(hostname, sep) {
				sep = ".dkr-ecr"
			}
			if r.FIPS {
				sep += "-fips"
			}
			if want := r.Account + sep + "." + r.Region + "." + r.Suffix; hostname != want {
				t.Fatalf("Parse(%q) = %+v: hostname %q is not %q", in, r, hostname, want)
			}
			if r.CacheKey() == "" {
				t.Fatalf("Parse(%q): ECR without a cache key", in)
			}
		case ECRPublic:
			if !strings.HasPrefix(r.Host, ECRPublicHost) && !strings.HasPrefix(r.Host, ECRPublicDualStackHost) {
				t.Fatalf("Parse(%q) = %+v", in, r)
			}
		case Namespace:
			h := r.Host
			if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
				h = h[:i]
			}
			if h != "nscr.io" && !hasLabelSuffix(h, namespaceSuffixes) {
				t.Fatalf("Parse(%q) = %+v", in, r)
			}
		}
		if r.Kind != Other && !utf8.ValidString(r.Host) {
			t.Fatalf("Parse(%q) = %+v: invalid UTF-8 host", in, r)
		}
	})
}
