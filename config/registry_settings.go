package config

import (
	"fmt"
	"path"
	"strings"

	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// The [registry] table holds pairs written "HOST=VALUE":
//
//	[registry]
//	# A registry served with a username and password kept in a file (0600,
//	# JSON {"username": "...", "password": "..."}); never the secret itself.
//	static = ["ghcr.io=/etc/dockhand/registries/ghcr.json"]
//	# A host served with the ECR credentials of an ECR registry: a DNS name or
//	# proxy in front of ECR. The end-to-end tests use it to point a loopback
//	# registry at the fake ECR API; the API itself is found the SDK's way
//	# (AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL, profile endpoint_url).
//	ecr_aliases = ["registry.internal:5000=123456789012.dkr.ecr.us-east-1.amazonaws.com"]
//	# A host served with Namespace's credentials for its registry (through
//	# docker-credential-nsc): a mirror or proxy in front of nscr.io.
//	nscr_aliases = ["registry.internal:5001=nscr.io"]
//
// HOST is a registry's host[:port] as docker names it, in any case.

// StaticCredentials returns registry.static as host -> file.
func (r RegistrySettings) StaticCredentials() map[string]string { return pairs(r.Static) }

// ECRAliasMap returns registry.ecr_aliases as host -> ECR registry host.
func (r RegistrySettings) ECRAliasMap() map[string]string { return pairs(r.ECRAliases) }

// NSCRAliasMap returns registry.nscr_aliases as host -> Namespace registry host.
func (r RegistrySettings) NSCRAliasMap() map[string]string { return pairs(r.NSCRAliases) }

// pairs splits checked HOST=VALUE entries; hosts are lower-cased.
func pairs(list []string) map[string]string {
	out := map[string]string{}
	for _, item := range list {
		host, value, ok := strings.Cut(item, "=")
		if ok {
			out[strings.ToLower(strings.TrimSpace(host))] = strings.TrimSpace(value)
		}
	}
	return out
}

// splitPair checks one HOST=VALUE entry and returns its parts.
func splitPair(item, valueName string) (host, value string, err error) {
	host, value, ok := strings.Cut(item, "=")
	host, value = strings.TrimSpace(host), strings.TrimSpace(value)
	if !ok || host == "" || value == "" {
		return "", "", fmt.Errorf("%q is not HOST=%s", item, valueName)
	}
	if strings.ContainsAny(host, "/@ \t") || strings.Contains(host, "://") {
		return "", "", fmt.Errorf("%q: %q is not a registry host[:port] (no scheme, path or user)", item, host)
	}
	return strings.ToLower(host), value, nil
}

func checkStaticCredentials(v any) error {
	seen := map[string]bool{}
	for _, item := range v.([]string) {
		host, file, err := splitPair(item, "FILE")
		if err != nil {
			return err
		}
		if !path.IsAbs(file) {
			return fmt.Errorf("%q: %q is not an absolute path", item, file)
		}
		if seen[host] {
			return fmt.Errorf("host %q is listed twice", host)
		}
		seen[host] = true
	}
	return nil
}

func checkECRAliases(v any) error {
	return checkAliases(v.([]string), "ECR_HOST", hosts.ECR, "an ECR private registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com)")
}

// checkECRRegistries checks registry.ecr_registries: ECR private registry
// hosts, each once.
func checkECRRegistries(v any) error {
	seen := map[string]bool{}
	for _, item := range v.([]string) {
		r := hosts.Parse(item)
		if r.Kind != hosts.ECR || r.Host != strings.ToLower(strings.TrimSpace(item)) {
			return fmt.Errorf("%q is not an ECR private registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com)", item)
		}
		if seen[r.Host] {
			return fmt.Errorf("host %q is listed twice", r.Host)
		}
		seen[r.Host] = true
	}
	return nil
}

func checkNSCRAliases(v any) error {
	return checkAliases(v.([]string), "NAMESPACE_HOST", hosts.Namespace, "a Namespace registry host (nscr.io)")
}

// checkAliases checks HOST=TARGET pairs: TARGET a registry of kind, HOST
// none that dockhand knows, each HOST once.
func checkAliases(items []string, targetName string, kind hosts.Kind, what string) error {
	seen := map[string]bool{}
	for _, item := range items {
		host, target, err := splitPair(item, targetName)
		if err != nil {
			return err
		}
		if hosts.Parse(target).Kind != kind {
			return fmt.Errorf("%q: %q is not %s", item, target, what)
		}
		if hosts.Parse(host).Kind != hosts.Other {
			return fmt.Errorf("%q: %q is already a known registry; it cannot be an alias", item, host)
		}
		if seen[host] {
			return fmt.Errorf("host %q is listed twice", host)
		}
		seen[host] = true
	}
	return nil
}
