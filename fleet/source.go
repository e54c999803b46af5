// Package fleet discovers the members of a remote buildkitd pool that
// changes under dockhand: an Auto Scaling group of builder instances, found
// by DNS (several A/AAAA records for one name, or SRV records, as Route 53,
// Cloud Map and Consul serve them) or by EC2 tag. A discovered membership is
// shared by a host's jobs for a short TTL through a file-locked cache, and
// when its source is down, slow or answers garbage the last good membership
// stands in, so a broken source never costs more than the discovery deadline.
//
// The EC2 call needs aws-sdk-go-v2, which is heavy: it runs in
// dockhand-cloud (package fleet/ec2), reached through Discoverer.EC2.
package fleet

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/dockhand-ci/dockhand/cloud"
)

// Source kinds.
const (
	KindDNS = "dns" // dns://NAME:PORT: every A and AAAA record of NAME, on PORT
	KindSRV = "srv" // srv://NAME: every SRV record of NAME, its targets' addresses on their ports
	KindEC2 = "ec2" // ec2://[REGION]?tag:KEY=VALUE&port=PORT[&address=private|public]: running instances
)

// Source is a discovered membership's origin, parsed from an endpoint of
// remote.endpoints or a [[remote.platform]] entry.
type Source struct {
	Raw     string // as configured: the cache key and what the log names
	Kind    string
	Name    string      // dns and srv: the name looked up
	Port    int         // dns and ec2: the port every member listens on
	Region  string      // ec2: "" takes the SDK's (AWS_REGION), else the instance metadata's
	Tags    []cloud.Tag // ec2: all must match
	Address string      // ec2: "private" (default) or "public"
}

// IsSource reports whether an endpoint names a discovery source rather
// than one node.
func IsSource(endpoint string) bool {
	scheme, _, _ := strings.Cut(endpoint, "://")
	return scheme == KindDNS || scheme == KindSRV || scheme == KindEC2
}

// Parse parses a discovery endpoint. The error says what is wrong in the
// words of the configuration.
func Parse(endpoint string) (Source, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return Source{}, fmt.Errorf("endpoint %q is not a discovery URL (dns://NAME:PORT, srv://NAME or ec2://REGION?tag:KEY=VALUE&port=PORT)", endpoint)
	}
	s := Source{Raw: endpoint, Kind: u.Scheme}
	switch u.Scheme {
	case KindDNS:
		port, perr := strconv.Atoi(u.Port())
		if u.RawQuery != "" || (u.Path != "" && u.Path != "/") || !isDNSName(u.Hostname()) || perr != nil || port < 1 || port > 65535 {
			return Source{}, fmt.Errorf("endpoint %q is not dns://NAME:PORT", endpoint)
		}
		s.Name, s.Port = u.Hostname(), port
	case KindSRV:
		if u.RawQuery != "" || (u.Path != "" && u.Path != "/") || u.Port() != "" || !isDNSName(u.Hostname()) {
			return Source{}, fmt.Errorf("endpoint %q is not srv://NAME (such as srv://_buildkit._tcp.builders.internal)", endpoint)
		}
		s.Name = u.Hostname()
	case KindEC2:
		if (u.Path != "" && u.Path != "/") || u.Port() != "" {
			return Source{}, fmt.Errorf("endpoint %q is not ec2://REGION?tag:KEY=VALUE&port=PORT", endpoint)
		}
		s.Region, s.Address = u.Hostname(), "private"
		if s.Region != "" && !isRegion(s.Region) {
			return Source{}, fmt.Errorf("endpoint %q: %q is not an AWS region", endpoint, s.Region)
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return Source{}, fmt.Errorf("endpoint %q: %w", endpoint, err)
		}
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			vs := q[k]
			if len(vs) != 1 {
				return Source{}, fmt.Errorf("endpoint %q: %s is given %d times", endpoint, k, len(vs))
			}
			switch {
			case strings.HasPrefix(k, "tag:") && len(k) > 4:
				s.Tags = append(s.Tags, cloud.Tag{Key: k[4:], Value: vs[0]})
			case k == "port":
				port, err := strconv.Atoi(vs[0])
				if err != nil || port < 1 || port > 65535 {
					return Source{}, fmt.Errorf("endpoint %q: port %q is not 1-65535", endpoint, vs[0])
				}
				s.Port = port
			case k == "address":
				if vs[0] != "private" && vs[0] != "public" {
					return Source{}, fmt.Errorf("endpoint %q: address %q is not private or public", endpoint, vs[0])
				}
				s.Address = vs[0]
			default:
				return Source{}, fmt.Errorf("endpoint %q: unknown parameter %q (want tag:KEY, port, address)", endpoint, k)
			}
		}
		if len(s.Tags) == 0 {
			return Source{}, fmt.Errorf("endpoint %q has no tag:KEY=VALUE filter (every instance of the account would be a builder)", endpoint)
		}
		if s.Port == 0 {
			return Source{}, fmt.Errorf("endpoint %q has no port=PORT", endpoint)
		}
	default:
		return Source{}, fmt.Errorf("endpoint %q: unknown discovery scheme %q (want dns, srv or ec2)", endpoint, u.Scheme)
	}
	return s, nil
}

// isDNSName accepts a host name of letters, digits, '-', '_' and dots.
func isDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// isRegion accepts an AWS region name such as us-east-1 or us-gov-west-1.
func isRegion(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.IndexFunc(p, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) >= 0 {
			return false
		}
	}
	return true
}
