package registry

import (
	"maps"
	"slices"

	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// Source names where a credential comes from.
type Source string

// The sources, in the order Route tries them (a job's own `docker login`
// comes first of all, checked by the Helper before routing).
const (
	SourceJobLogin  Source = "job login"
	SourceECR       Source = "ecr"
	SourceECRPublic Source = "ecr-public"
	SourceNamespace Source = "docker-credential-nsc"
	SourcePackages  Source = "buildkite-packages"
	SourceStatic    Source = "static"
	SourceNone      Source = "none"
)

// Settings are the configured registries (env's [packages] and [registry]
// tables), as plain data: the bootstrap records them in the job state
// (bootstrap.RegistrySettings), so registry never reads the configuration.
type Settings struct {
	Static      map[string]string `json:"static,omitempty"`       // host -> file holding its username and password
	ECRAliases  map[string]string `json:"ecr_aliases,omitempty"`  // host -> the ECR registry host whose credentials it gets
	NSCRAliases map[string]string `json:"nscr_aliases,omitempty"` // host -> the Namespace registry host whose credentials it gets
	Packages    []string          `json:"packages,omitempty"`     // Buildkite Package Registries, ORG/REGISTRY
	// NSCTokenFile is the job's Namespace tenant token (on the namespace
	// builder), for docker-credential-nsc when the environment names none.
	// It is not in the job's environment: there NSC_TOKEN_FILE would shadow a
	// step's own `nsc auth` login.
	NSCTokenFile string `json:"nsc_token_file,omitempty"`
}

// Route is where the credentials for one registry host come from.
type Route struct {
	Source Source
	Host   string // the registry's lower-cased host[:port]
	// Registry is the ECR registry whose token is used (SourceECR,
	// SourceECRPublic); for an alias, the ECR registry it stands for.
	Registry hosts.Registry
	AliasOf  string // through registry.ecr_aliases or nscr_aliases: the host it stands for
	File     string // SourceStatic: the file holding the credentials
	Audience string // SourcePackages: the OIDC audience
	// Note explains a SourceNone route that looks like it was meant to be
	// served (a Buildkite Packages host with no registry configured).
	Note string
}

// Resolve decides, from the host alone and the settings, where the
// credentials of serverURL come from. First match wins: an ECR alias, ECR
// private, ECR Public, Namespace, Buildkite Packages, a static file; else
// SourceNone, and docker carries on anonymously. It is pure.
func Resolve(serverURL string, s Settings) Route {
	r := hosts.Parse(serverURL)
	route := Route{Source: SourceNone, Host: r.Host}
	if r.Host == "" {
		return route
	}
	if target, ok := s.ECRAliases[r.Host]; ok {
		if t := hosts.Parse(target); t.Kind == hosts.ECR {
			route.Source, route.Registry, route.AliasOf = SourceECR, t, t.Host
			return route
		}
	}
	if target, ok := s.NSCRAliases[r.Host]; ok {
		if t := hosts.Parse(target); t.Kind == hosts.Namespace {
			route.Source, route.AliasOf = SourceNamespace, t.Host
			return route
		}
	}
	switch r.Kind {
	case hosts.ECR:
		route.Source, route.Registry = SourceECR, r
		return route
	case hosts.ECRPublic:
		route.Source, route.Registry = SourceECRPublic, r
		return route
	case hosts.Namespace:
		route.Source = SourceNamespace
		return route
	case hosts.BuildkitePackages:
		if len(s.Packages) == 0 {
			route.Note = "packages.registries is empty: no Buildkite Package Registry to request an OIDC token for"
			break
		}
		route.Source, route.Audience = SourcePackages, PackagesAudience(s.Packages[0])
		return route
	}
	if file, ok := staticFile(s.Static, r.Host); ok {
		route.Source, route.File = SourceStatic, file
	}
	return route
}

// dockerHubKey is the key docker files Docker Hub's credentials under.
const dockerHubKey = "https://index.docker.io/v1/"

// NamedHosts are the registries whose credentials come from dockhand that a
// docker config can name in credHelpers (which matches whole hosts only):
// the configured ones (static files, aliases, Buildkite Packages), the
// fixed Namespace and ECR Public hosts, and extra (the ECR cache
// repository's, say). Sorted, each once. It is pure.
func NamedHosts(s Settings, extra ...string) []string {
	set := map[string]bool{"nscr.io": true, "public.ecr.aws": true, "ecr-public.aws.com": true}
	add := func(host string) {
		if r := hosts.Parse(host); r.Host != "" {
			if dockerHubHosts[r.Host] {
				set[dockerHubKey] = true
				return
			}
			set[r.Host] = true
		}
	}
	for h := range s.Static {
		add(h)
	}
	for h, target := range s.ECRAliases {
		add(h)
		add(target)
	}
	for h := range s.NSCRAliases {
		add(h)
	}
	if len(s.Packages) > 0 {
		add(hosts.PackagesHost)
	}
	for _, h := range extra {
		if r := hosts.Parse(h); Resolve(r.Host, s).Source != SourceNone {
			add(r.Host)
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// PackagesAudience is the OIDC audience of a Buildkite Package Registry,
// ORG/REGISTRY.
func PackagesAudience(orgRegistry string) string {
	return "https://" + hosts.PackagesHost + "/" + orgRegistry
}

// dockerHubHosts are the names Docker Hub goes by; docker itself asks for
// "https://index.docker.io/v1/".
var dockerHubHosts = map[string]bool{"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true}

// staticFile finds host in the configured static credentials, Docker Hub
// under any of its names.
func staticFile(static map[string]string, host string) (string, bool) {
	if f, ok := static[host]; ok {
		return f, true
	}
	if dockerHubHosts[host] {
		for h := range dockerHubHosts {
			if f, ok := static[h]; ok {
				return f, true
			}
		}
	}
	return "", false
}
