package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/internal/jsonfile"
)

// MaxMembers bounds one source's membership: a bigger answer is taken for
// garbage (a misconfigured name or tag), not for a fleet.
const MaxMembers = 256

// DrainTag marks an EC2 builder that takes no new builds: discovery leaves
// it out of the membership (unless every member has it), while the builds
// it runs finish. Any value but "false" drains.
const DrainTag = "dockhand:drain"

// Draining reports whether the value of a DrainTag an instance carries
// drains it: any but "false" (in any case).
func Draining(value string) bool {
	return !strings.EqualFold(strings.TrimSpace(value), "false")
}

// MaxLastGood bounds the age of a last good membership that stands in for
// a failing source: past it, the pool has likely been replaced.
const MaxLastGood = 30 * time.Minute

// Discoverer finds the members of discovery sources, sharing what it found
// with the host's other jobs through CacheDir.
type Discoverer struct {
	Timeout  time.Duration // the bound of one discovery: probe_timeout
	TTL      time.Duration // how long a membership serves the host's jobs
	CacheDir string        // "" shares nothing and keeps no last good membership
	Now      func() time.Time
	// Resolver answers DNS and SRV sources; nil is net.DefaultResolver.
	Resolver *net.Resolver
	// DNSServer is the server Resolver asks (remote.dns_server), named in
	// errors in place of the system resolver Go's errors name.
	DNSServer string
	// AllowLoopback lets a source's loopback addresses be members
	// (remote.allow_loopback: a pool on this very host, as in
	// tests); link-local, broadcast, unspecified and multicast ones never.
	AllowLoopback bool
	// EC2 lists the addresses of running instances; nil fails EC2 sources.
	EC2 func(ctx context.Context, req cloud.EC2Request) ([]string, error)
}

// Membership is what one source resolved to for this job.
type Membership struct {
	Source   string
	Members  []string      // tcp://ADDR:PORT, sorted; the last good ones when the source failed
	Resolved bool          // this job asked the source
	Age      time.Duration // age of Members (0 when just resolved)
	Took     time.Duration // how long asking the source took
	Err      string        // why the source's answer was not used
	// Skipped are parts of the answer passed over, each with why: SRV
	// targets that do not resolve, addresses that cannot be a member.
	Skipped []string
	// Expired: the last good membership was older than MaxLastGood, so
	// none stands in.
	Expired time.Duration
}

// Line is the membership in one job-log line.
func (m Membership) Line() string {
	nodes := func(n int) string {
		if n == 1 {
			return "1 node"
		}
		return strconv.Itoa(n) + " nodes"
	}
	skipped := ""
	if len(m.Skipped) > 0 {
		skipped = "; passed over: " + strings.Join(m.Skipped, ", ")
	}
	switch {
	case m.Err == "" && m.Resolved:
		return fmt.Sprintf("discovered %s: %s in %s%s", m.Source, nodes(len(m.Members)), m.Took.Round(time.Millisecond), skipped)
	case m.Err == "":
		return fmt.Sprintf("discovered %s: %s (shared by another job %s ago)%s", m.Source, nodes(len(m.Members)), m.Age.Round(time.Millisecond), skipped)
	case len(m.Members) > 0:
		return fmt.Sprintf("discovery %s failed (%s); using the last good membership, %s from %s ago", m.Source, m.Err, nodes(len(m.Members)), m.Age.Round(time.Second))
	case m.Expired > 0:
		return fmt.Sprintf("discovery %s failed (%s) and its last good membership, from %s ago, is older than %s: no node from it", m.Source, m.Err, m.Expired.Round(time.Second), MaxLastGood)
	}
	return fmt.Sprintf("discovery %s failed (%s) and no earlier membership is known: no node from it", m.Source, m.Err)
}

const (
	cacheFile    = "fleet.json"
	lockFile     = "fleet.lock"
	cacheVersion = 1
)

// record is one source in the shared cache.
type record struct {
	Members  []string  `json:"members,omitempty"` // the last good membership
	Skipped  []string  `json:"skipped,omitempty"` // what its answer had that was passed over
	At       time.Time `json:"at"`                // when it was resolved
	FailedAt time.Time `json:"failed_at"`         // the last failure since, if any
	Err      string    `json:"error,omitempty"`
}

type cache struct {
	Version int               `json:"version"`
	Sources map[string]record `json:"sources"`
}

func (d *Discoverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Discover returns the membership of each source, in order. It takes at
// most Timeout (plus reading a file): a source that does not answer good
// members by then is replaced by its last good membership. When another
// job resolved or failed a source less than TTL ago, that is used as it is.
// A ctx that ends (the job's cancel) ends the wait for the lock and the
// questions early; what was not had by then is a failed source.
func (d *Discoverer) Discover(ctx context.Context, sources []Source) []Membership {
	out := d.discover(ctx, sources)
	for i := range out {
		if m := &out[i]; m.Err != "" && len(m.Members) > 0 && m.Age > MaxLastGood {
			m.Members, m.Expired = nil, m.Age
		}
	}
	return out
}

func (d *Discoverer) discover(job context.Context, sources []Source) []Membership {
	start := d.now()
	deadline := start.Add(d.Timeout)
	out := make([]Membership, len(sources))
	sharing := d.CacheDir != ""
	c := cache{Version: cacheVersion, Sources: map[string]record{}}
	locked := false
	if sharing {
		// The holder resolves within Timeout: waiting for it is waiting
		// for its answer.
		if release, err := jsonfile.LockUntil(job, filepath.Join(d.CacheDir, lockFile), deadline); err == nil {
			defer release()
			locked = true
		}
		c = d.read()
	}
	var todo []int
	for i, s := range sources {
		r, ok := c.Sources[s.Raw]
		out[i] = Membership{Source: s.Raw, Members: r.Members, Skipped: r.Skipped, Age: d.now().Sub(r.At)}
		switch {
		case ok && d.fresh(r.FailedAt) && r.FailedAt.After(r.At):
			out[i].Err = r.Err + ", " + d.now().Sub(r.FailedAt).Round(time.Millisecond).String() + " ago"
		case ok && d.fresh(r.At):
		case job.Err() != nil:
			out[i].Err = "cancelled: " + job.Err().Error()
		case sharing && !locked:
			// Another job holds the lock past the deadline: no time is left
			// to ask the source.
			out[i].Err = "another job is still discovering"
		default:
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return out
	}
	ctx, cancel := context.WithDeadline(job, deadline)
	defer cancel()
	var wg sync.WaitGroup
	answers := make([][]string, len(sources))
	skipped := make([][]string, len(sources))
	errs := make([]error, len(sources))
	took := make([]time.Duration, len(sources))
	for _, i := range todo {
		wg.Go(func() {
			t0 := d.now()
			answers[i], skipped[i], errs[i] = d.ask(ctx, sources[i])
			took[i] = d.now().Sub(t0)
		})
	}
	wg.Wait()
	now := d.now()
	for _, i := range todo {
		s := sources[i]
		r := c.Sources[s.Raw]
		m := &out[i]
		m.Resolved, m.Took = true, took[i]
		good, refused, err := []string(nil), []string(nil), errs[i]
		if err == nil {
			good, refused, err = Members(answers[i], d.AllowLoopback)
		}
		if err != nil {
			switch {
			case job.Err() != nil:
				// The job was cancelled: the source did not fail, so the
				// host's other jobs are not told it did.
				m.Err = "cancelled: " + job.Err().Error()
				continue
			case ctx.Err() != nil:
				err = fmt.Errorf("no answer within %s", d.Timeout)
			}
			m.Err = err.Error()
			r.FailedAt, r.Err = now, m.Err
		} else {
			r = record{Members: good, Skipped: append(skipped[i], refused...), At: now}
			m.Members, m.Skipped, m.Age = good, r.Skipped, 0
		}
		c.Sources[s.Raw] = r
	}
	if sharing && locked {
		_ = d.write(c)
	}
	return out
}

func (d *Discoverer) fresh(at time.Time) bool {
	age := d.now().Sub(at)
	return age >= -time.Second && age < d.TTL
}

// ask queries one source: its answer as ADDR:PORT strings, and the SRV
// targets passed over because they do not resolve (during a rolling
// replacement a target's address often goes before its SRV record). Only
// when no target resolves is that an error. DNS errors name DNSServer.
func (d *Discoverer) ask(ctx context.Context, s Source) (answer, skipped []string, err error) {
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	switch s.Kind {
	case KindDNS:
		ips, err := r.LookupNetIP(ctx, "ip", s.Name)
		if err != nil {
			return nil, nil, d.dnsError(err)
		}
		out := make([]string, len(ips))
		for i, ip := range ips {
			out[i] = netip.AddrPortFrom(ip.Unmap(), uint16(s.Port)).String()
		}
		return out, nil, nil
	case KindSRV:
		_, srvs, err := r.LookupSRV(ctx, "", "", s.Name)
		if err != nil {
			return nil, nil, d.dnsError(err)
		}
		if len(srvs) > MaxMembers {
			return nil, nil, fmt.Errorf("%d SRV records, more than %d", len(srvs), MaxMembers)
		}
		var out []string
		var lastErr error
		for _, srv := range srvs {
			if srv.Target == "." {
				continue // "no service here"
			}
			ips, err := r.LookupNetIP(ctx, "ip", srv.Target)
			if err != nil {
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				skipped = append(skipped, strings.TrimSuffix(srv.Target, ".")+" (does not resolve)")
				lastErr = err
				continue
			}
			for _, ip := range ips {
				out = append(out, netip.AddrPortFrom(ip.Unmap(), srv.Port).String())
			}
		}
		if len(out) == 0 && lastErr != nil {
			return nil, nil, fmt.Errorf("no SRV target resolves (%s): %w", strings.Join(skipped, ", "), d.dnsError(lastErr))
		}
		return out, skipped, nil
	case KindEC2:
		if d.EC2 == nil {
			return nil, nil, errors.New("EC2 discovery is not available here")
		}
		dl, _ := ctx.Deadline()
		addrs, err := d.EC2(ctx, cloud.EC2Request{Region: s.Region, Tags: s.Tags, Address: s.Address, Deadline: dl})
		if err != nil {
			return nil, nil, err
		}
		out := make([]string, len(addrs))
		for i, a := range addrs {
			out[i] = net.JoinHostPort(a, strconv.Itoa(s.Port))
		}
		return out, nil, nil
	}
	return nil, nil, fmt.Errorf("unknown source kind %q", s.Kind)
}

// dnsError names the configured DNS server in a lookup's error: Go's
// resolver names the system's (from resolv.conf) even when it dialled
// another.
func (d *Discoverer) dnsError(err error) error {
	var de *net.DNSError
	if d.DNSServer != "" && errors.As(err, &de) {
		c := *de
		c.Server = d.DNSServer + " (remote.dns_server)"
		return &c
	}
	return err
}

// Members checks a source's answer (ADDR:PORT strings) and turns it into
// endpoints: sorted, without duplicates. No member, an address that is not
// an IP and more than MaxMembers are errors: the answer is not a fleet. An
// address that cannot be a pool's builder is passed over and returned in
// refused, with why: unspecified, multicast, broadcast, link-local (which
// holds the instance metadata service) and, unless allowLoopback, loopback;
// when nothing else is left, that is an error too.
func Members(answer []string, allowLoopback bool) (members, refused []string, err error) {
	if len(answer) == 0 {
		return nil, nil, errors.New("no records")
	}
	if len(answer) > MaxMembers {
		return nil, nil, fmt.Errorf("%d members, more than %d", len(answer), MaxMembers)
	}
	out := make([]string, 0, len(answer))
	for _, a := range answer {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || !ap.Addr().IsValid() || ap.Port() == 0 {
			return nil, nil, fmt.Errorf("%q is not an IP address and port", a)
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if why := unfit(ap.Addr(), allowLoopback); why != "" {
			refused = append(refused, ap.String()+" ("+why+")")
			continue
		}
		ep := "tcp://" + ap.String()
		if !slices.Contains(out, ep) {
			out = append(out, ep)
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("no address can be a member: %s", strings.Join(refused, ", "))
	}
	slices.Sort(out)
	return out, refused, nil
}

// unfit says why an address cannot be a pool member ("" when it can).
func unfit(a netip.Addr, allowLoopback bool) string {
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast():
		return "multicast"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsLoopback() && !allowLoopback:
		return "loopback"
	}
	return ""
}

func (d *Discoverer) read() cache {
	read, err := jsonfile.Read[cache](filepath.Join(d.CacheDir, cacheFile))
	if err != nil || read.Version != cacheVersion || read.Sources == nil {
		// Missing, unreadable or another version's: start afresh.
		return cache{Version: cacheVersion, Sources: map[string]record{}}
	}
	return read
}

func (d *Discoverer) write(c cache) error {
	return jsonfile.Write(filepath.Join(d.CacheDir, cacheFile), c)
}

// NewResolver is a resolver that asks server (HOST:PORT) for every name,
// over UDP and TCP as the answer needs; "" is the system's resolver (nil).
func NewResolver(server string) *net.Resolver {
	if server == "" {
		return nil
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, server)
	}}
}
