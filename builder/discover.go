package builder

import (
	"context"
	"path/filepath"
	"slices"
	"strings"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/fleet"
)

// NewDiscoverer is the discoverer of a host's remote fleet: bounded by
// probe_timeout, memberships shared under STATE/builders for
// remote.discovery_ttl, EC2 asked through dockhand-cloud next to self.
func NewDiscoverer(cfg *config.Config, e *agentenv.Environment, stateDir, self string) *fleet.Discoverer {
	d := &fleet.Discoverer{
		Timeout:  cfg.ProbeTimeout,
		TTL:      cfg.Remote.DiscoveryTTL,
		Resolver: fleet.NewResolver(cfg.Remote.DNSServer),
		// Named in DNS errors, which would name the system's resolver.
		DNSServer:     cfg.Remote.DNSServer,
		AllowLoopback: cfg.Remote.AllowLoopback,
	}
	if stateDir != "" {
		d.CacheDir = filepath.Join(stateDir, "builders")
	}
	cloudPath, cloudEnv := cloud.Path(self), awsEnv(e, cfg.Remote.EC2EndpointURL)
	d.EC2 = func(ctx context.Context, req cloud.EC2Request) ([]string, error) {
		// dockhand-cloud's own start and exit are allowed on top of the
		// request's deadline, which the SDK call keeps.
		ctx, cancel := context.WithDeadline(ctx, req.Deadline.Add(cloudGrace))
		defer cancel()
		var reply cloud.EC2Reply
		if err := cloud.Run(ctx, cloudPath, cloudEnv, cloud.FleetEC2, req, &reply); err != nil {
			return nil, err
		}
		return reply.Addresses, nil
	}
	return d
}

// awsEnv is dockhand-cloud's environment for EC2 discovery: the host's
// (PATH, proxies) and the AWS SDK's variables but for endpoint overrides,
// which only the configuration gives (remote.ec2_endpoint_url): the
// membership serves every job on the host, so no job may redirect it.
func awsEnv(e *agentenv.Environment, endpoint string) []string {
	out := daemonEnv(e)
	for k, v := range e.Dump() {
		if strings.HasPrefix(k, "AWS_") && !strings.HasPrefix(k, "AWS_ENDPOINT_URL") && v != "" {
			out = append(out, k+"="+v)
		}
	}
	if endpoint != "" {
		out = append(out, "AWS_ENDPOINT_URL_EC2="+endpoint)
	}
	slices.Sort(out)
	return out
}

// Discover replaces the discovery sources among r's endpoints (dns://,
// srv://, ec2://) with the members they have now, or had last. It returns
// the pool as nodes and the memberships, for the job log. Sources that
// yield no node are named in r.Undiscovered. ctx ends it early (the job's
// cancel).
func Discover(ctx context.Context, d *fleet.Discoverer, r RemoteSpec) (RemoteSpec, []fleet.Membership) {
	var sources []fleet.Source
	for _, ep := range r.AllEndpoints() {
		if s, err := fleet.Parse(ep); err == nil && fleet.IsSource(ep) {
			sources = append(sources, s)
		}
	}
	if len(sources) == 0 {
		return r, nil
	}
	ms := d.Discover(ctx, sources)
	members := map[string][]string{}
	for _, m := range ms {
		members[m.Source] = m.Members
		if len(m.Members) == 0 {
			r.Undiscovered = append(r.Undiscovered, m.Source)
		}
	}
	expand := func(eps []string) []string {
		var out []string
		for _, ep := range eps {
			add := []string{ep}
			if fleet.IsSource(ep) {
				add = members[ep]
			}
			for _, a := range add {
				if !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
		return out
	}
	r.Endpoints = expand(r.Endpoints)
	platforms := make([]config.PlatformNodes, 0, len(r.Platforms))
	for _, p := range r.Platforms {
		platforms = append(platforms, config.PlatformNodes{Platform: p.Platform, Endpoints: expand(p.Endpoints)})
	}
	r.Platforms = platforms
	return r, ms
}
