package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/test/ecrapi"
	"github.com/dockhand-ci/dockhand/test/fakedns"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestDiscoveredFleetFollowsMembershipChanges: the remote pool is found by
// DNS (one name, several A records, from a loopback DNS server) and by EC2
// tag (DescribeInstances on the fake AWS control plane, through the real
// SDK in dockhand-cloud), never listed. Three real buildkitd share one port
// on 127.0.0.1-3, as an Auto Scaling group's instances would; between jobs
// the first node leaves and a fourth joins. Each pipeline's builds are
// counted in the daemons' build histories: the pipeline whose node left
// moves, the one whose rendezvous choice is now the joiner moves to it, the
// third stays. Then the DNS server hangs: the next job still builds, on the
// last good membership, and its log says so in one line.
func TestDiscoveredFleetFollowsMembershipChanges(t *testing.T) {
	// Not parallel: it asserts a choice within the discovery and probe deadlines (5.5 s).
	kit, tls, port := fleetKit(t)
	var nodes []*harness.Buildkitd
	var eps, ips []string
	for i := range 4 {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		b, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{
			Name: fmt.Sprintf("fleet-%d", i), TCP: true, Listen: fmt.Sprintf("%s:%d", ip, port), TLS: &tls.Server,
			InsecureRegistries: []string{kit.Registry.Host},
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes, eps, ips = append(nodes, b), append(eps, b.TCPAddr), append(ips, ip)
	}
	before, after := eps[0:3], eps[1:4]
	// Three pipelines: on node 0 (which leaves), on node 1 (stays, and is
	// still its choice with node 3), on node 2 (whose choice becomes node 3).
	var slugs [3]string
	for i := 0; slugs[0] == "" || slugs[1] == "" || slugs[2] == ""; i++ {
		s := fmt.Sprintf("fleet-app-%d", i)
		b, a := builder.Rendezvous(s, before)[0], builder.Rendezvous(s, after)[0]
		switch {
		case b == eps[0] && slugs[0] == "":
			slugs[0] = s
		case b == eps[1] && a == eps[1] && slugs[1] == "":
			slugs[1] = s
		case b == eps[2] && a == eps[3] && slugs[2] == "":
			slugs[2] = s
		}
	}
	movedTo := builder.Rendezvous(slugs[0], after)[0]

	dns := fakedns.Start(t)
	const key, secret = "AKIAFLEETE2E00000001", "fleet-e2e-secret"
	aws, err := ecrapi.Start(ecrapi.Options{Keys: map[string]string{key: secret}, Password: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(aws.Close)
	imds := ecrapi.StartIMDS(t, "us-east-1")
	setMembers := func(idx ...int) {
		var addrs []string
		var is []ecrapi.Instance
		for _, i := range idx {
			addrs = append(addrs, ips[i])
			is = append(is, ecrapi.Instance{ID: fmt.Sprintf("i-%d", i), Region: "us-east-1", State: "running", PrivateIP: ips[i],
				Tags: map[string]string{"Role": "buildkitd"}})
		}
		// A stopped builder with the tag is no member.
		is = append(is, ecrapi.Instance{ID: "i-stopped", Region: "us-east-1", State: "stopped", PrivateIP: "127.0.0.9", Tags: map[string]string{"Role": "buildkitd"}})
		dns.SetA("pool.fleet.test", addrs...)
		aws.SetInstances(is...)
	}
	counts := func() []int {
		out := make([]int, len(nodes))
		for i, b := range nodes {
			out[i] = len(histories(t, kit.Kit, b))
		}
		return out
	}
	job := func(r *rig, slug string, env map[string]string) string {
		t.Helper()
		cmd := fmt.Sprintf("printf 'FROM %s\\nRUN echo \"%s $RANDOM$RANDOM\" > /r\\n' > Dockerfile\ndocker buildx build --progress plain .\n", kit.BaseImage, slug)
		jobEnv := map[string]string{"BUILDKITE_PIPELINE_SLUG": slug, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}
		for k, v := range env {
			jobEnv[k] = v
		}
		id, agent := r.start(cmd, jobEnv)
		f, log := r.finish(id, agent)
		if f.ExitStatus != "0" {
			t.Fatalf("job of %s: %+v\n%s", slug, f, log)
		}
		return log
	}

	for _, tc := range []struct {
		name     string
		endpoint string
		env      map[string]string
	}{
		{"dns", fmt.Sprintf("dns://pool.fleet.test:%d", port), nil},
		{"ec2", fmt.Sprintf("ec2://us-east-1?tag:Role=buildkitd&port=%d", port), map[string]string{
			// The fake's endpoint comes from the configuration; one a job
			// sets is not used for the host's discovery.
			"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:1",
			"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
		}},
		// No region in the endpoint and no AWS_REGION, as on the stack before
		// its environment hook: the instance's region, from its metadata.
		{"ec2 region from instance metadata", fmt.Sprintf("ec2://?tag:Role=buildkitd&port=%d", port), map[string]string{
			"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.URL,
			"AWS_CONFIG_FILE": "/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			writeFile(t, r.config, fmt.Sprintf(`state_dir = %q
builders = ["remote"]
probe_timeout = "2s"
probe_cache_ttl = "0s"
[remote]
endpoints = [%q]
ca = %q
cert = %q
key = %q
server_name = "buildkitd.test"
discovery_ttl = "0s"
dns_server = %q
ec2_endpoint_url = %q
allow_loopback = true # the fleet's nodes are on this host
`, r.state, tc.endpoint, tls.Client.CA, tls.Client.Cert, tls.Client.Key, dns.Addr, aws.URL))

			setMembers(0, 1, 2)
			c0 := counts()
			for i, slug := range slugs {
				log := job(r, slug, tc.env)
				if ep, _ := chosen(t, log); ep != eps[i] {
					t.Errorf("%s ran on %s, want its node %s\n%s", slug, ep, eps[i], section(log))
				}
				if want := "builder: discovered " + tc.endpoint + ": 3 nodes in "; !strings.Contains(log, want) {
					t.Errorf("no %q line:\n%s", want, section(log))
				}
			}
			c1 := counts()
			for i, want := range []int{1, 1, 1, 0} {
				if got := c1[i] - c0[i]; got != want {
					t.Errorf("with nodes 0-2, node %d ran %d builds, want %d", i, got, want)
				}
			}

			// Node 0 leaves the fleet, node 3 joins.
			setMembers(1, 2, 3)
			wantOn := []string{movedTo, eps[1], eps[3]}
			for i, slug := range slugs {
				log := job(r, slug, tc.env)
				if ep, _ := chosen(t, log); ep != wantOn[i] {
					t.Errorf("after the change %s ran on %s, want %s\n%s", slug, ep, wantOn[i], section(log))
				}
			}
			c2 := counts()
			want := []int{0, 1, 0, 1} // slug 1 stays on node 1, slug 2 goes to node 3
			for i, ep := range eps {
				if ep == movedTo {
					want[i]++ // slug 0 goes to its next choice
				}
			}
			for i := range nodes {
				if got := c2[i] - c1[i]; got != want[i] {
					t.Errorf("after the change node %d ran %d builds, want %d (%v)", i, got, want[i], want)
				}
			}

			if tc.name != "dns" {
				return
			}
			// The DNS server stops answering: the last good membership stands.
			dns.Hang()
			log := job(r, slugs[1], nil)
			if ep, took := chosen(t, log); ep != eps[1] || took > 5500*time.Millisecond {
				t.Errorf("with DNS hanging: %s in %s, want %s within the discovery and probe deadlines (2 s each) and a load margin\n%s", ep, took, eps[1], section(log))
			}
			if n := strings.Count(log, "builder: discovery dns://"); n != 1 || !strings.Contains(log, "(no answer within 2s); using the last good membership, 3 nodes from") {
				t.Errorf("want one fallback line, got %d:\n%s", n, section(log))
			}
		})
	}
}
