package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// nsLoadMargin absorbs a loaded CI machine in the choice-time bounds; the
// tight figures are measured by make bench.
const nsLoadMargin = 1500 * time.Millisecond

// TestNamespaceChosenWithinTheProbeDeadline: through the real agent, with
// Namespace first and the remote pool second, probe_timeout 1.5s. nsc
// refusing the identity, hanging (with a grandchild holding its pipes) and
// slow (3 s a call) each cost the job at most probe_timeout plus process
// start, and the pool is chosen with one line saying why; a healthy nsc is
// chosen; a Namespace builder that does not answer its probe is not. Then, on a fresh host, eight jobs starting together do one token
// exchange and all build on Namespace.
func TestNamespaceChosenWithinTheProbeDeadline(t *testing.T) {
	// Not parallel: it asserts the choice's duration within a band of the probe deadlines.
	p := startPool(t, 2)
	nsNode, poolNode := p.eps[0], p.eps[1]
	nsc := buildFakeNsc(t)
	backendPath := filepath.Join(userTempDir(t), "backend.json")
	calls := filepath.Join(userTempDir(t), "nsc-calls.log")
	backend := newNscBackend(p, nsNode, calls)
	configure := func(r *rig, probeTimeout string) {
		p.probeTimeout = probeTimeout
		writeFile(t, r.config, p.config(r.state, p.fleet.Client, []string{poolNode}, `builders = ["namespace", "remote"]
[namespace]
nsc = "`+nsc+`"
tenant_id = "tnt_e2e"`))
	}
	env := map[string]string{"FAKENSC_BACKEND": backendPath, "BUILDKITE_PIPELINE_SLUG": "ns-deadline"}
	exchanges := func() int {
		data, _ := os.ReadFile(calls)
		return strings.Count(string(data), "nsc auth exchange-oidc-token")
	}
	deadline := 1500*time.Millisecond + 500*time.Millisecond // probe_timeout + process start

	r := newRig(t)
	configure(r, "1.5s")
	for _, tc := range []struct {
		name    string
		set     func(b *nscBackend)
		node    string
		reason  string
		atLeast time.Duration
		bound   time.Duration
		fresh   bool // the host's shared token and builder setup are removed first
	}{
		{"refusing", func(b *nscBackend) { b.Reject = "auth" }, poolNode, "nsc auth exchange-oidc-token: it seems that's not allowed. We got: tenant tnt_e2e does not trust this identity", 0, deadline, false},
		{"hanging", func(b *nscBackend) { b.Hang = true }, poolNode, "not ready within 2s (probe_timeout 1.5s): nsc auth exchange-oidc-token: no answer in time", deadline, deadline + 500*time.Millisecond, false},
		{"slow", func(b *nscBackend) { b.Latency = "3s" }, poolNode, "not ready within 2s (probe_timeout 1.5s): nsc auth exchange-oidc-token: no answer in time", deadline, deadline, false},
		{"healthy", func(*nscBackend) {}, nsNode, "", 0, deadline, false},
		// Namespace's API answering in 150 ms a call, as a real one far
		// away: a cold host (an exchange, then the setup's 2 + 1 calls) is
		// set up within the deadline; a warm one makes no call at all.
		{"150ms per API call, cold", func(b *nscBackend) { b.APILatency = "150ms" }, nsNode, "", 0, deadline, true},
		{"150ms per API call, warm", func(b *nscBackend) { b.APILatency = "150ms" }, nsNode, "", 0, deadline, false},
		// Namespace's builder is down: its probe fails within the deadline.
		// (A fresh host, or the builder set up earlier would be reused.)
		{"builder down", func(b *nscBackend) {
			b.Builders = []nscBuilderDef{b.Builders[0]}
			b.Builders[0].Endpoint = "tcp://127.0.0.1:1"
		}, poolNode, "its builder tcp://127.0.0.1:1 does not answer", 0, deadline, true},
	} {
		b := backend
		tc.set(&b)
		writeBackend(t, backendPath, b)
		if tc.fresh {
			if err := os.RemoveAll(filepath.Join(r.state, "namespace")); err != nil {
				t.Fatal(err)
			}
		}
		before := nscCalls(calls)
		id, agent := r.start("true", env)
		f, log := r.finish(id, agent)
		if f.ExitStatus != "0" {
			t.Fatalf("%s: %+v\n%s", tc.name, f, log)
		}
		ep, took := chosen(t, log)
		t.Logf("%s nsc: chose %s in %s", tc.name, ep, took)
		if ep != tc.node {
			t.Errorf("%s nsc: chose %s, want %s\n%s", tc.name, ep, tc.node, section(log))
		}
		if took < tc.atLeast-100*time.Millisecond || took > tc.bound+nsLoadMargin {
			t.Errorf("%s nsc: chosen in %s, want %s to %s (and a load margin)", tc.name, took, tc.atLeast, tc.bound)
		}
		if tc.reason != "" {
			var fails []string
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, "builder: namespace failed: ") {
					fails = append(fails, strings.TrimSpace(l))
				}
			}
			if len(fails) != 1 || !strings.Contains(fails[0], "builder: namespace failed: "+tc.reason) ||
				!strings.HasSuffix(fails[0], "; trying the next builder kind") {
				t.Errorf("%s nsc: want one line saying namespace failed: %s:\n%s", tc.name, tc.reason, section(log))
			}
		} else if !strings.Contains(log, `builder: namespace "`+buildx.NamespaceName+`"`) {
			t.Errorf("%s nsc: want the namespace builder:\n%s", tc.name, section(log))
		}
		switch tc.name {
		case "healthy", "150ms per API call, cold":
			if !strings.Contains(log, "builder: namespace: exchanged a tenant token, shared with the host's jobs; set the builder up, shared with the host's jobs") {
				t.Errorf("%s nsc: want a fresh shared token and builder setup:\n%s", tc.name, section(log))
			}
		case "150ms per API call, warm":
			if n := nscCalls(calls) - before; n != 0 || !strings.Contains(log, "; builder setup shared by the host's jobs, valid ") {
				t.Errorf("warm host: %d nsc calls, want none (the shared token and builder setup):\n%s", n, section(log))
			}
		}
	}

	// A fresh host (state dir): eight jobs at once, one exchange.
	r = newRig(t)
	configure(r, "10s") // the lock waits of eight jobs on two loaded cores
	writeBackend(t, backendPath, backend)
	before := exchanges()
	var logs []string
	jobs := make([]struct {
		id string
		a  *harness.Agent
	}, 8)
	for i := range jobs {
		jobs[i].id, jobs[i].a = r.start("true", env)
	}
	for _, j := range jobs {
		f, log := r.finish(j.id, j.a)
		if f.ExitStatus != "0" {
			t.Fatalf("concurrent job: %+v\n%s", f, log)
		}
		if ep, _ := chosen(t, log); ep != nsNode {
			t.Errorf("concurrent job chose %s, want Namespace's %s\n%s", ep, nsNode, section(log))
		}
		logs = append(logs, log)
	}
	if n := exchanges() - before; n != 1 {
		t.Errorf("8 concurrent jobs did %d token exchanges, want 1", n)
	}
	shared := 0
	for _, l := range logs {
		if strings.Contains(l, "builder: namespace: tenant token shared by the host's jobs") {
			shared++
		}
	}
	if shared != 7 {
		t.Errorf("%d of 8 jobs used the shared token, want 7", shared)
	}
}

// nscCalls counts the calls the fake nsc logged.
func nscCalls(log string) int {
	data, _ := os.ReadFile(log)
	return strings.Count(string(data), "\n")
}
