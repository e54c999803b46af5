package fleet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/internal/jsonfile"
	"github.com/dockhand-ci/dockhand/test/fakedns"
	"github.com/miekg/dns"
)

func mustParse(t *testing.T, raw string) Source {
	t.Helper()
	s, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Source
		err  string
	}{
		{in: "dns://builders.internal:1234", want: Source{Kind: KindDNS, Name: "builders.internal", Port: 1234}},
		{in: "srv://_buildkit._tcp.builders.internal", want: Source{Kind: KindSRV, Name: "_buildkit._tcp.builders.internal"}},
		{in: "ec2://us-east-1?tag:Role=buildkitd&port=1234", want: Source{Kind: KindEC2, Region: "us-east-1", Port: 1234, Address: "private", Tags: []cloud.Tag{{Key: "Role", Value: "buildkitd"}}}},
		{in: "ec2://?tag:aws:autoscaling:groupName=builders&tag:Env=ci&port=1234&address=public",
			want: Source{Kind: KindEC2, Port: 1234, Address: "public", Tags: []cloud.Tag{{Key: "Env", Value: "ci"}, {Key: "aws:autoscaling:groupName", Value: "builders"}}}},
		{in: "dns://builders.internal", err: "is not dns://NAME:PORT"},
		{in: "dns://bad name:1", err: "not a discovery URL"},
		{in: "dns://b.internal:1234?x=1", err: "is not dns://NAME:PORT"},
		{in: "srv://b.internal:53", err: "is not srv://NAME"},
		{in: "ec2://us-east-1?port=1234", err: "no tag:KEY=VALUE filter"},
		{in: "ec2://us-east-1?tag:Role=b", err: "no port=PORT"},
		{in: "ec2://us-east-1?tag:Role=b&port=99999", err: `port "99999" is not 1-65535`},
		{in: "ec2://useast?tag:Role=b&port=1", err: "is not an AWS region"},
		{in: "ec2://us-east-1?tag:Role=b&port=1&zone=a", err: `unknown parameter "zone"`},
		{in: "ec2://us-east-1?tag:Role=a&tag:Role=b&port=1", err: "tag:Role is given 2 times"},
		{in: "ec2://us-east-1?tag:Role=a&port=1&address=elastic", err: `address "elastic" is not private or public`},
	} {
		got, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		tc.want.Raw = tc.in
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if !IsSource(tc.in) {
			t.Errorf("IsSource(%q) = false", tc.in)
		}
	}
	for _, ep := range []string{"tcp://10.0.0.1:1234", "unix:///run/buildkit.sock"} {
		if IsSource(ep) {
			t.Errorf("IsSource(%q) = true", ep)
		}
	}
}

func TestMembers(t *testing.T) {
	huge := make([]string, MaxMembers+1)
	for i := range huge {
		huge[i] = fmt.Sprintf("10.0.%d.%d:1234", i/256, i%256)
	}
	for _, tc := range []struct {
		in   []string
		want []string
		err  string
	}{
		{in: []string{"10.0.0.2:1234", "10.0.0.1:1234", "10.0.0.2:1234"}, want: []string{"tcp://10.0.0.1:1234", "tcp://10.0.0.2:1234"}},
		{in: []string{"[fd00::1]:1234", "[::ffff:10.0.0.1]:1234"}, want: []string{"tcp://10.0.0.1:1234", "tcp://[fd00::1]:1234"}},
		{in: nil, err: "no records"},
		{in: []string{"builder-1:1234"}, err: `"builder-1:1234" is not an IP address`},
		{in: []string{"0.0.0.0:1234"}, err: "no address can be a member: 0.0.0.0:1234 (unspecified)"},
		{in: []string{"224.0.0.1:1234"}, err: "224.0.0.1:1234 (multicast)"},
		{in: huge, err: "257 members, more than 256"},
	} {
		got, _, err := Members(tc.in, false)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Members(%v) = %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Members(%v) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// clock is a settable time for TTL tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newDiscoverer(t *testing.T, server string, clk *clock) *Discoverer {
	return &Discoverer{Timeout: 500 * time.Millisecond, TTL: 10 * time.Second, CacheDir: t.TempDir(), Now: clk.Now,
		Resolver: NewResolver(server), DNSServer: server, AllowLoopback: true} // fakedns's members are on this host
}

func TestDNSAndSRVMembershipsAreSharedForTheTTL(t *testing.T) {
	srv := fakedns.Start(t)
	srv.SetA("pool.fleet.test", "127.0.0.1", "127.0.0.2", "::1")
	srv.SetSRV("_buildkit._tcp.fleet.test", dns.SRV{Target: "b1.fleet.test", Port: 7001}, dns.SRV{Target: "b2.fleet.test", Port: 7002})
	srv.SetA("b1.fleet.test", "127.0.0.11")
	srv.SetA("b2.fleet.test", "127.0.0.12")
	clk := &clock{t: time.Now()}
	d := newDiscoverer(t, srv.Addr, clk)
	sources := []Source{mustParse(t, "dns://pool.fleet.test:1234"), mustParse(t, "srv://_buildkit._tcp.fleet.test")}

	ms := d.Discover(t.Context(), sources)
	want := [][]string{
		{"tcp://127.0.0.1:1234", "tcp://127.0.0.2:1234", "tcp://[::1]:1234"},
		{"tcp://127.0.0.11:7001", "tcp://127.0.0.12:7002"},
	}
	for i, m := range ms {
		if m.Err != "" || !m.Resolved || !slices.Equal(m.Members, want[i]) {
			t.Errorf("%s: %+v, want members %v", m.Source, m, want[i])
		}
		if !strings.HasPrefix(m.Line(), "discovered "+m.Source+": ") {
			t.Errorf("line %q", m.Line())
		}
	}
	asked := srv.Queries()

	// Within the TTL the host's next job asks nothing.
	clk.Add(5 * time.Second)
	srv.SetA("pool.fleet.test", "127.0.0.3")
	ms = d.Discover(t.Context(), sources)
	if n := srv.Queries(); n != asked {
		t.Errorf("%d queries within the TTL, want none", n-asked)
	}
	if ms[0].Resolved || !slices.Equal(ms[0].Members, want[0]) || !strings.Contains(ms[0].Line(), "shared by another job 5s ago") {
		t.Errorf("within the TTL: %+v %q", ms[0], ms[0].Line())
	}
	// After it, the change is seen.
	clk.Add(6 * time.Second)
	ms = d.Discover(t.Context(), sources)
	if !ms[0].Resolved || !slices.Equal(ms[0].Members, []string{"tcp://127.0.0.3:1234"}) {
		t.Errorf("after the TTL: %+v", ms[0])
	}
}

func TestConcurrentJobsDiscoverOnce(t *testing.T) {
	srv := fakedns.Start(t)
	srv.SetA("pool.fleet.test", "127.0.0.1", "127.0.0.2")
	clk := &clock{t: time.Now()}
	dir := t.TempDir()
	var wg sync.WaitGroup
	var resolved atomic.Int32
	for range 8 {
		wg.Go(func() {
			d := &Discoverer{Timeout: 2 * time.Second, TTL: 10 * time.Second, CacheDir: dir, Now: clk.Now, Resolver: NewResolver(srv.Addr), AllowLoopback: true}
			m := d.Discover(t.Context(), []Source{mustParse(t, "dns://pool.fleet.test:1234")})[0]
			if len(m.Members) != 2 || m.Err != "" {
				t.Errorf("%+v", m)
			}
			if m.Resolved {
				resolved.Add(1)
			}
		})
	}
	wg.Wait()
	if n := resolved.Load(); n != 1 {
		t.Errorf("%d of 8 concurrent jobs asked DNS, want 1", n)
	}
}

// TestBadSourcesFallBackToTheLastGoodMembership: a source that is down,
// hangs, or answers no records, a non-IP or a huge answer costs at most the
// timeout and leaves the last good membership in use, with one line.
func TestBadSourcesFallBackToTheLastGoodMembership(t *testing.T) {
	good := []string{"tcp://127.0.0.1:1234", "tcp://127.0.0.2:1234"}
	for _, tc := range []struct {
		name   string
		break_ func(s *fakedns.Server, ec2 *[]string)
		why    string
	}{
		{"down", func(s *fakedns.Server, _ *[]string) { s.Close() }, ""},
		{"hanging", func(s *fakedns.Server, _ *[]string) { s.Hang() }, "no answer within 500ms"},
		{"no records", func(s *fakedns.Server, _ *[]string) { s.SetA("pool.fleet.test") }, ""},
		{"huge", func(s *fakedns.Server, _ *[]string) {
			var ips []string
			for i := range 300 {
				ips = append(ips, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1))
			}
			s.SetA("pool.fleet.test", ips...)
		}, "300 members, more than 256"},
		{"non-IP from EC2", func(_ *fakedns.Server, ec2 *[]string) { *ec2 = []string{"10.0.0.1", "i-0abc"} }, `"i-0abc:1234" is not an IP address`},
		{"no instances", func(_ *fakedns.Server, ec2 *[]string) { *ec2 = nil }, "no records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakedns.Start(t)
			srv.SetA("pool.fleet.test", "127.0.0.1", "127.0.0.2")
			ec2 := []string{"127.0.0.1", "127.0.0.2"}
			var mu sync.Mutex
			clk := &clock{t: time.Now()}
			d := newDiscoverer(t, srv.Addr, clk)
			d.Now = nil // real time: the timeout is measured
			d.EC2 = func(ctx context.Context, req cloud.EC2Request) ([]string, error) {
				if req.Deadline.IsZero() || req.Tags[0] != (cloud.Tag{Key: "Role", Value: "buildkitd"}) {
					return nil, errors.New("bad request")
				}
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(ec2), nil
			}
			raw := "dns://pool.fleet.test:1234"
			if strings.Contains(tc.name, "EC2") || strings.Contains(tc.name, "instances") {
				raw = "ec2://us-east-1?tag:Role=buildkitd&port=1234"
			}
			sources := []Source{mustParse(t, raw)}
			if m := d.Discover(t.Context(), sources)[0]; !slices.Equal(m.Members, good) {
				t.Fatalf("first discovery: %+v", m)
			}
			d.TTL = 0 // every job asks again
			mu.Lock()
			tc.break_(srv, &ec2)
			mu.Unlock()
			start := time.Now()
			m := d.Discover(t.Context(), sources)[0]
			took := time.Since(start)
			if !slices.Equal(m.Members, good) || m.Err == "" || !strings.Contains(m.Err, tc.why) {
				t.Errorf("%+v, want the last good membership and an error with %q", m, tc.why)
			}
			if line := m.Line(); !strings.Contains(line, "using the last good membership, 2 nodes from") || strings.Contains(line, "\n") {
				t.Errorf("line %q", line)
			}
			if took > d.Timeout+time.Second {
				t.Errorf("took %s with a %s timeout", took, d.Timeout)
			}
		})
	}
}

func TestNoLastGoodMembership(t *testing.T) {
	srv := fakedns.Start(t)
	d := newDiscoverer(t, srv.Addr, &clock{t: time.Now()})
	m := d.Discover(t.Context(), []Source{mustParse(t, "dns://nothing.fleet.test:1234")})[0]
	if len(m.Members) != 0 || m.Err == "" || !strings.Contains(m.Line(), "no earlier membership is known") {
		t.Errorf("%+v %q", m, m.Line())
	}
}

// TestIssue23_4_UnresolvableSRVTargetIsSkipped: during a rolling
// replacement a target's address goes before its SRV record. The targets
// that resolve are the pool and one line names the others; only when none
// resolves does the source fail, naming them and the configured DNS server.
func TestIssue23_4_UnresolvableSRVTargetIsSkipped(t *testing.T) {
	srv := fakedns.Start(t)
	srv.SetSRV("_buildkit._tcp.fleet.test", dns.SRV{Target: "b1.fleet.test", Port: 7001}, dns.SRV{Target: "gone.fleet.test", Port: 7002})
	srv.SetA("b1.fleet.test", "10.0.0.11")
	d := newDiscoverer(t, srv.Addr, &clock{t: time.Now()})
	m := d.Discover(t.Context(), []Source{mustParse(t, "srv://_buildkit._tcp.fleet.test")})[0]
	if m.Err != "" || !slices.Equal(m.Members, []string{"tcp://10.0.0.11:7001"}) {
		t.Errorf("%+v, want b1 alone", m)
	}
	if line := m.Line(); !strings.Contains(line, "1 node") || !strings.Contains(line, "passed over: gone.fleet.test (does not resolve)") {
		t.Errorf("line %q, want b1 and gone.fleet.test named as passed over", line)
	}
	srv.SetSRV("_buildkit._tcp.none.test", dns.SRV{Target: "gone1.fleet.test", Port: 1}, dns.SRV{Target: "gone2.fleet.test", Port: 2})
	m = d.Discover(t.Context(), []Source{mustParse(t, "srv://_buildkit._tcp.none.test")})[0]
	if len(m.Members) != 0 || !strings.Contains(m.Err, "gone1.fleet.test") || !strings.Contains(m.Err, "gone2.fleet.test") {
		t.Errorf("%+v, want an error naming both targets", m)
	}
}

// TestIssue23_4_ErrorsNameTheConfiguredDNSServer: Go's resolver names the
// system's server (resolv.conf) in its errors even when it dialled
// remote.dns_server; the job log must name the one asked.
func TestIssue23_4_ErrorsNameTheConfiguredDNSServer(t *testing.T) {
	srv := fakedns.Start(t)
	d := newDiscoverer(t, srv.Addr, &clock{t: time.Now()})
	for _, raw := range []string{"dns://nothing.fleet.test:1234", "srv://_buildkit._tcp.nothing.fleet.test"} {
		m := d.Discover(t.Context(), []Source{mustParse(t, raw)})[0]
		if !strings.Contains(m.Err, "on "+srv.Addr+" (remote.dns_server)") {
			t.Errorf("%s: error %q does not name the configured server %s", raw, m.Err, srv.Addr)
		}
	}
}

// TestIssue23_4_LastGoodMembershipHasAnAgeBound: a source down for longer
// than MaxLastGood no longer has its last membership stand in (the pool has
// likely been replaced since); the line says so.
func TestIssue23_4_LastGoodMembershipHasAnAgeBound(t *testing.T) {
	srv := fakedns.Start(t)
	srv.SetA("pool.fleet.test", "10.0.0.1")
	clk := &clock{t: time.Now()}
	d := newDiscoverer(t, srv.Addr, clk)
	sources := []Source{mustParse(t, "dns://pool.fleet.test:1234")}
	if m := d.Discover(t.Context(), sources)[0]; len(m.Members) != 1 {
		t.Fatalf("first discovery: %+v", m)
	}
	srv.SetA("pool.fleet.test")
	clk.Add(MaxLastGood - time.Minute)
	if m := d.Discover(t.Context(), sources)[0]; len(m.Members) != 1 || m.Err == "" {
		t.Errorf("within the bound: %+v, want the last good membership", m)
	}
	clk.Add(2 * time.Minute)
	m := d.Discover(t.Context(), sources)[0]
	if len(m.Members) != 0 || !strings.Contains(m.Line(), "is older than 30m0s: no node from it") {
		t.Errorf("past the bound: %+v %q, want no member", m, m.Line())
	}
}

// TestIssue23_4_UnfitAddressesRefused: a discovered address that cannot be
// a pool's builder is refused: link-local (169.254.169.254 is the instance
// metadata service), broadcast, unspecified, and loopback unless the host's
// configuration allows it (remote.allow_loopback).
func TestIssue23_4_UnfitAddressesRefused(t *testing.T) {
	answer := []string{"10.0.0.1:1234", "169.254.169.254:80", "[fe80::1]:1234", "255.255.255.255:1234", "0.0.0.0:1234", "127.0.0.1:1234", "[::1]:1234"}
	got, refused, err := Members(answer, false)
	if err != nil || !slices.Equal(got, []string{"tcp://10.0.0.1:1234"}) || len(refused) != 6 {
		t.Errorf("Members = %v, refused %v, %v; want 10.0.0.1 alone", got, refused, err)
	}
	for _, why := range []string{"169.254.169.254:80 (link-local)", "[fe80::1]:1234 (link-local)", "255.255.255.255:1234 (broadcast)", "0.0.0.0:1234 (unspecified)", "127.0.0.1:1234 (loopback)"} {
		if !slices.Contains(refused, why) {
			t.Errorf("refused %v lacks %q", refused, why)
		}
	}
	if got, _, _ := Members(answer, true); !slices.Equal(got, []string{"tcp://10.0.0.1:1234", "tcp://127.0.0.1:1234", "tcp://[::1]:1234"}) {
		t.Errorf("loopback allowed: %v", got)
	}
	srv := fakedns.Start(t)
	srv.SetA("pool.fleet.test", "169.254.169.254", "10.0.0.2")
	d := newDiscoverer(t, srv.Addr, &clock{t: time.Now()})
	m := d.Discover(t.Context(), []Source{mustParse(t, "dns://pool.fleet.test:80")})[0]
	if !slices.Equal(m.Members, []string{"tcp://10.0.0.2:80"}) || !strings.Contains(m.Line(), "passed over: 169.254.169.254:80 (link-local)") {
		t.Errorf("%+v %q", m, m.Line())
	}
}

// A job's cancel ends its discovery at once, however long probe_timeout
// is, and is not shared with the host's next jobs as the source failing.
func TestCancelEndsDiscoveryAndIsNotShared(t *testing.T) {
	d := &Discoverer{Timeout: time.Hour, TTL: time.Hour, CacheDir: t.TempDir(), AllowLoopback: true}
	asked := make(chan struct{}, 1)
	d.EC2 = func(ctx context.Context, _ cloud.EC2Request) ([]string, error) {
		asked <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	sources := []Source{mustParse(t, "ec2://us-east-1?tag:Role=buildkitd&port=1234")}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan Membership, 1)
	go func() { done <- d.Discover(ctx, sources)[0] }()
	<-asked
	cancel()
	select {
	case m := <-done:
		if !strings.Contains(m.Err, "cancelled") || len(m.Members) != 0 {
			t.Errorf("cancelled discovery: %+v, want an error saying it was cancelled", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a cancelled discovery still waits for its source")
	}

	// The next job asks the source itself: the cancel was not a failure.
	d.EC2 = func(context.Context, cloud.EC2Request) ([]string, error) { return []string{"127.0.0.1"}, nil }
	if m := d.Discover(t.Context(), sources)[0]; !m.Resolved || m.Err != "" || len(m.Members) != 1 {
		t.Errorf("next job: %+v, want the source asked and answering", m)
	}

	// A job cancelled while another holds the lock does not wait for it.
	release, err := jsonfile.Lock(t.Context(), filepath.Join(d.CacheDir, lockFile), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	d.TTL = 0 // nothing shared is fresh: the source would be asked
	go func() { done <- d.Discover(ctx, sources)[0] }()
	select {
	case m := <-done:
		if !strings.Contains(m.Err, "cancelled") {
			t.Errorf("cancelled while another job holds the lock: %+v", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a cancelled discovery still waits for the lock")
	}
}
