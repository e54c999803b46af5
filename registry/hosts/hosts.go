// Package hosts tells which kind of registry a server URL names, as the
// credential helper receives it from docker ("123456789012.dkr.ecr.
// us-east-1.amazonaws.com", "https://index.docker.io/v1/", "nscr.io",
// "127.0.0.1:5000"). It is pure and has no dependency beyond the standard
// library, so the configuration checks in env can use it too.
package hosts

import (
	"net/url"
	"strings"
)

// Kind is the family a registry host belongs to.
type Kind int

const (
	// Other is any registry dockhand has no built-in credentials for.
	Other Kind = iota
	// ECR is an Amazon ECR private registry, in any partition.
	ECR
	// ECRPublic is Amazon ECR Public (public.ecr.aws).
	ECRPublic
	// Namespace is Namespace's registry (nscr.io) or one of its endpoints.
	Namespace
	// BuildkitePackages is Buildkite Package Registries.
	BuildkitePackages
)

func (k Kind) String() string {
	switch k {
	case ECR:
		return "ecr"
	case ECRPublic:
		return "ecr-public"
	case Namespace:
		return "namespace"
	case BuildkitePackages:
		return "buildkite-packages"
	}
	return "other"
}

// Registry is what a server URL says about its registry.
type Registry struct {
	Kind Kind
	// Host is the lower-cased host[:port], the key docker and the job's
	// login store use; "" when the input names no host.
	Host string
	// For ECR: the 12-digit account (the registry id), the region, whether
	// the host is a FIPS one (dkr.ecr-fips) or a dual-stack one (on.aws),
	// and the partition's DNS suffix ("amazonaws.com", "amazonaws.com.cn",
	// "on.aws", ...).
	Account   string
	Region    string
	FIPS      bool
	DualStack bool
	Suffix    string
}

// PackagesHost is the host of Buildkite Package Registries.
const PackagesHost = "packages.buildkite.com"

// ECR Public's hostnames: the registry and its dual-stack name.
const (
	ECRPublicHost          = "public.ecr.aws"
	ECRPublicDualStackHost = "ecr-public.aws.com"
)

// ecrSuffixes are the DNS suffixes of the AWS partitions that host ECR
// registries: commercial, China, the European Sovereign Cloud, dual-stack
// (commercial and China) and the ISO partitions.
var ecrSuffixes = []string{
	"amazonaws.com",
	"amazonaws.com.cn",
	"amazonaws.eu",
	"on.aws",
	"on.amazonwebservices.com.cn",
	"c2s.ic.gov",
	"sc2s.sgov.gov",
	"cloud.adc-e.uk",
	"csp.hci.ic.gov",
}

// namespaceSuffixes are the Namespace-owned registry domains (any host
// below them); nscr.io itself is one too.
var namespaceSuffixes = []string{".nscr.io", ".nscluster.cloud", ".namespace.systems"}

// Parse classifies a server URL: a bare host[:port], or a URL with an
// http(s) scheme, a path or user info. Anything it cannot read is Other.
// Only whole hostnames match: look-alikes such as
// "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example" are Other.
func Parse(serverURL string) Registry {
	host, hostname, ok := split(serverURL)
	if !ok {
		return Registry{Kind: Other, Host: host}
	}
	r := Registry{Kind: Other, Host: host}
	switch {
	case hostname == ECRPublicHost || hostname == ECRPublicDualStackHost:
		r.Kind = ECRPublic
		r.Region = "us-east-1" // ECR Public's API lives there only
		r.DualStack = hostname == ECRPublicDualStackHost
	case hostname == PackagesHost:
		r.Kind = BuildkitePackages
	case hostname == "nscr.io" || hasLabelSuffix(hostname, namespaceSuffixes):
		r.Kind = Namespace
	default:
		if e, ok := parseECR(hostname); ok {
			e.Host = host
			return e
		}
	}
	return r
}

// hasLabelSuffix reports whether hostname is a proper subdomain of one of
// the suffixes (each starts with a dot).
func hasLabelSuffix(hostname string, suffixes []string) bool {
	for _, s := range suffixes {
		if len(hostname) > len(s) && strings.HasSuffix(hostname, s) && hostname[len(hostname)-len(s)-1] != '.' {
			return true
		}
	}
	return false
}

// split returns the lower-cased host[:port] and the hostname of serverURL.
// ok is false when it names no usable host.
func split(serverURL string) (host, hostname string, ok bool) {
	s := strings.TrimSpace(serverURL)
	if s == "" || strings.ContainsAny(s, " \t\r\n\\") {
		return "", "", false
	}
	if i := strings.Index(s, "://"); i >= 0 {
		scheme := strings.ToLower(s[:i])
		if scheme != "https" && scheme != "http" {
			return "", "", false
		}
		s = s[i+3:]
	}
	u, err := url.Parse("https://" + s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", "", false
	}
	host = strings.ToLower(u.Host)
	hostname = strings.ToLower(u.Hostname())
	if hostname == "" {
		return host, "", false
	}
	return host, hostname, true
}

// parseECR matches a whole ECR private registry hostname:
//
//	ACCOUNT.dkr.ecr[-fips].REGION.SUFFIX   (also written dkr-ecr[-fips])
//
// with a 12-digit ACCOUNT, a REGION label and one of ecrSuffixes.
func parseECR(hostname string) (Registry, bool) {
	labels := strings.Split(hostname, ".")
	if len(labels) < 4 || !isAccount(labels[0]) {
		return Registry{}, false
	}
	rest := labels[1:]
	var service string
	switch {
	case rest[0] == "dkr" && len(rest) > 1:
		service, rest = rest[1], rest[2:]
		if service != "ecr" && service != "ecr-fips" {
			return Registry{}, false
		}
	case rest[0] == "dkr-ecr" || rest[0] == "dkr-ecr-fips":
		service, rest = strings.TrimPrefix(rest[0], "dkr-"), rest[1:]
	default:
		return Registry{}, false
	}
	if len(rest) < 2 || !isRegion(rest[0]) {
		return Registry{}, false
	}
	suffix := strings.Join(rest[1:], ".")
	if !isECRSuffix(suffix) {
		return Registry{}, false
	}
	return Registry{
		Kind:      ECR,
		Account:   labels[0],
		Region:    rest[0],
		FIPS:      service == "ecr-fips",
		DualStack: strings.HasPrefix(suffix, "on."),
		Suffix:    suffix,
	}, true
}

func isECRSuffix(s string) bool {
	for _, x := range ecrSuffixes {
		if s == x {
			return true
		}
	}
	return false
}

func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// isRegion accepts a region label: a letter or digit, then letters,
// digits, '-' or '_' (lower case: the host is lower-cased first).
func isRegion(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '-' && r != '_')) {
			return false
		}
	}
	return true
}

// ECRHost returns the canonical hostname of the ECR private registry
// account in region, in the commercial partition unless suffix says
// otherwise ("" means amazonaws.com, or amazonaws.com.cn for cn- regions).
func ECRHost(account, region, suffix string) string {
	if suffix == "" {
		suffix = "amazonaws.com"
		if strings.HasPrefix(region, "cn-") {
			suffix = "amazonaws.com.cn"
		}
	}
	sep := ".dkr.ecr."
	if strings.HasPrefix(suffix, "on.") {
		sep = ".dkr-ecr."
	}
	return account + sep + region + "." + suffix
}

// CacheKey names the registry a token is for: tokens are per registry,
// whichever of its hostnames (standard, FIPS, dual-stack) asked.
func (r Registry) CacheKey() string {
	switch r.Kind {
	case ECR:
		return "ecr/" + r.Account + "/" + r.Region
	case ECRPublic:
		return "ecr-public"
	}
	return ""
}
