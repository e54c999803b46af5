package builder

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/builder/namespace"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
)

// namespaceGrace is what Namespace's setup may take beyond probe_timeout:
// the start of its processes. The choice never waits longer for it.
const namespaceGrace = 500 * time.Millisecond

// namespaceRun is Namespace's setup (auth, then `nsc docker buildx setup`)
// running beside the other candidates' probes, under the same deadline.
type namespaceRun struct {
	done    chan struct{}
	ns      *namespace.Namespace
	b       buildx.Builder
	exports map[string]string
	err     error
	cancel  context.CancelFunc
}

// startNamespace starts Namespace's setup when the queue wants Namespace
// and it can be set up here; nil otherwise. probed is closed once the probes
// are done, after which dockerUp tells whether builds should load into the
// host's docker engine.
//
// Once nsc has set the builder up, its nodes are probed like remote ones
// (BuildKit ListWorkers over the mTLS connection nsc configured) within
// what is left of the deadline, so a Namespace outage falls back in time.
func startNamespace(ctx context.Context, o SetupOptions, spec Spec, probed <-chan struct{}, dockerUp func() bool) *namespaceRun {
	if !slices.Contains(spec.Order, config.BuilderNamespace) || (namespaceKind{}).plan(spec, nil, false).State != NeedsSetup {
		return nil
	}
	cfg := o.Config
	timeout := cfg.ProbeTimeout + namespaceGrace
	ctx, cancel := context.WithTimeout(ctx, timeout)
	r := &namespaceRun{done: make(chan struct{}), cancel: cancel}
	r.ns = &namespace.Namespace{
		NSC: spec.Namespace.NSC, Agent: jobAgent(o.Env), Auth: cfg.Namespace.Auth, TenantID: cfg.Namespace.TenantID,
		AWSRegion: cfg.Namespace.AWSRegion, IdentityPool: cfg.Namespace.IdentityPool,
		JobDir: o.JobDir, DockerConfig: o.DockerConfig, Env: o.Env.ToSlice(), Timeout: timeout, HostPlatform: spec.HostPlatform,
		LoadDecided: func() bool {
			select {
			case <-probed:
				return dockerUp()
			case <-ctx.Done():
				return false
			}
		},
	}
	if o.StateDir != "" {
		r.ns.Tokens = namespace.HostTenantTokens(o.StateDir)
		r.ns.Setups = namespace.HostSetups(o.StateDir)
	}
	go func() {
		defer close(r.done)
		r.b, r.exports, r.err = r.ns.SetUp(ctx)
		if r.err == nil {
			r.err = probeNamespace(ctx, o, r.b)
			if r.err != nil && r.ns.Reused {
				r.ns.Setups.Drop(r.ns.TenantID, r.ns.DefaultLoad) // the next job sets up anew
			}
		}
		if r.err != nil && ctx.Err() != nil {
			r.err = fmt.Errorf("not ready within %s (probe_timeout %s): %w", timeout, cfg.ProbeTimeout, r.err)
		}
	}()
	return r
}

// wait returns the setup's outcome: by its deadline, as its processes are
// killed then.
func (r *namespaceRun) wait() (buildx.Builder, map[string]string, error) {
	<-r.done
	return r.b, r.exports, r.err
}

// stop gives the setup up (another kind was chosen).
func (r *namespaceRun) stop() {
	if r != nil {
		r.cancel()
	}
}

// note says where the tenant token came from, once the setup is done.
func (r *namespaceRun) note() string {
	if r == nil {
		return ""
	}
	select {
	case <-r.done:
		var notes []string
		for _, n := range []string{r.ns.TokenNote, r.ns.SetupNote} {
			if n = strings.TrimSpace(n); n != "" {
				notes = append(notes, n)
			}
		}
		return strings.Join(notes, "; ")
	default:
		return ""
	}
}

// probeNamespace probes the nodes of the builder nsc wrote, by ctx's
// deadline.
func probeNamespace(ctx context.Context, o SetupOptions, b buildx.Builder) error {
	dl, _ := ctx.Deadline()
	p := NewProber(o.Config, o.Env, "", o.Self)
	p.Timeout = max(time.Until(dl)-cloudStart, 100*time.Millisecond)
	var ts []cloud.ProbeTarget
	for _, n := range b.Nodes {
		ts = append(ts, cloud.ProbeTarget{Kind: cloud.ProbeBuildkit, Endpoint: n.Endpoint, TLS: n.TLS})
	}
	rep := p.Probe(ctx, ts)
	for i, r := range rep.Results {
		if !r.OK {
			return fmt.Errorf("its builder %s does not answer: %s", ts[i].Endpoint, r.Error)
		}
	}
	return nil
}

// cloudStart is what starting dockhand-cloud takes, kept out of a probe's
// own timeout when the deadline is shared.
const cloudStart = 100 * time.Millisecond
