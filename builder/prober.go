package builder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/internal/jsonfile"
)

// Prober probes builders through `dockhand-cloud probe` and shares the
// results between the host's jobs for TTL through a file-locked cache, so
// jobs starting together probe once: the first probes while the others wait
// on the lock, then read what it found.
type Prober struct {
	Cloud    string        // the dockhand-cloud executable
	Env      []string      // its environment (PATH and proxy variables)
	Timeout  time.Duration // probe_timeout: the deadline of every probe
	CacheDir string        // where the shared cache lives; "" shares nothing
	TTL      time.Duration // how long a result is shared; 0 shares nothing
	Now      func() time.Time
	// Run performs the probes; nil runs Cloud. Tests replace it.
	Run func(ctx context.Context, req cloud.ProbeRequest) ([]cloud.ProbeResult, error)
	// Dial checks that a shared healthy endpoint still accepts
	// connections; nil is net.DialTimeout. Tests replace it.
	Dial func(network, addr string, timeout time.Duration) error
}

// ProbeReport is what one Probe call found.
type ProbeReport struct {
	Results []cloud.ProbeResult // one per target, in order
	Probed  int                 // targets this call probed itself
	Shared  int                 // targets whose result came from another job
	Age     time.Duration       // age of the oldest shared result
	Took    time.Duration
	Note    string // why results could not be shared, if so
}

const (
	probeCacheFile    = "probes.json"
	probeLockFile     = "probes.lock"
	probeCacheVersion = 2 // 2: load (active builds, routed jobs)
	// cloudGrace is what the dockhand-cloud process may take beyond the
	// probes' own deadline (start-up and exit) before it is killed.
	cloudGrace = 2 * time.Second
)

type probeCache struct {
	Version int                          `json:"version"`
	Results map[string]cloud.ProbeResult `json:"results"`
	// Routed are the moments this host's jobs were routed to each target
	// (by key): a job counts on its node's load until the node is probed
	// again, when its build is among the node's own.
	Routed map[string][]time.Time `json:"routed,omitempty"`
}

func (p *Prober) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Probe returns a result for every target: fresh shared results where
// there are some, new probes for the rest. It never fails: a probe that
// cannot run is a result with the reason. ctx (the job's cancel) ends the
// wait for the shared cache and the probes early.
func (p *Prober) Probe(ctx context.Context, targets []cloud.ProbeTarget) ProbeReport {
	start := p.now()
	rep := ProbeReport{Results: make([]cloud.ProbeResult, len(targets))}
	if len(targets) == 0 {
		return rep
	}
	sharing := p.CacheDir != "" && p.TTL > 0
	var release func()
	if sharing {
		var err error
		release, err = p.lock(ctx, start.Add(p.Timeout+cloudGrace))
		if err != nil {
			sharing, rep.Note = false, err.Error()
		} else {
			defer release()
		}
	}
	cache := probeCache{Version: probeCacheVersion, Results: map[string]cloud.ProbeResult{}}
	if sharing {
		cache = p.readCache()
	}
	var todo []cloud.ProbeTarget
	var todoIdx []int
	shared := make([]bool, len(targets))
	for i, t := range targets {
		if r, ok := cache.Results[t.Key()]; ok && p.fresh(r) {
			rep.Results[i], shared[i] = r, true
		}
	}
	// A shared "healthy" is only as good as its age: a node that died since
	// refuses connections, which costs a connect to find out.
	gone := p.reachable(targets, rep.Results, shared)
	for i, t := range targets {
		if shared[i] && !gone[i] {
			rep.Shared++
			rep.Age = max(rep.Age, p.now().Sub(rep.Results[i].At))
			continue
		}
		todo = append(todo, t)
		todoIdx = append(todoIdx, i)
	}
	if len(todo) > 0 {
		results := p.run(ctx, todo)
		// Probes that ctx (the job's cancel) cut short found nothing about
		// the builders: the host's next jobs are not told they failed.
		found := ctx.Err() == nil
		for j, r := range results {
			rep.Results[todoIdx[j]] = r
			if found {
				cache.Results[todo[j].Key()] = r
			}
		}
		rep.Probed = len(todo)
		if sharing && found {
			if err := p.writeCache(cache); err != nil {
				rep.Note = err.Error()
			}
		}
	}
	for i, t := range targets {
		rep.Results[i].Routed = routedSince(cache.Routed[t.Key()], rep.Results[i].At)
	}
	rep.Took = p.now().Sub(start)
	return rep
}

// routedSince counts the routes after at.
func routedSince(routes []time.Time, at time.Time) int {
	n := 0
	for _, r := range routes {
		if r.After(at) {
			n++
		}
	}
	return n
}

// RecordRoute counts a job routed to t on t's load for the host's next
// jobs, until t is probed again: what the node cannot show yet, since the
// job's build has not started.
func (p *Prober) RecordRoute(ctx context.Context, t cloud.ProbeTarget) error {
	return p.update(ctx, func(c *probeCache) {
		if c.Routed == nil {
			c.Routed = map[string][]time.Time{}
		}
		c.Routed[t.Key()] = append(c.Routed[t.Key()], p.now())
	})
}

// reachable connects to each shared healthy target, in parallel, and
// reports those that no longer accept connections.
func (p *Prober) reachable(targets []cloud.ProbeTarget, results []cloud.ProbeResult, shared []bool) []bool {
	gone := make([]bool, len(targets))
	timeout := min(p.Timeout, 500*time.Millisecond)
	dial := p.Dial
	if dial == nil {
		dial = func(network, addr string, timeout time.Duration) error {
			c, err := net.DialTimeout(network, addr, timeout)
			if err == nil {
				c.Close()
			}
			return err
		}
	}
	var wg sync.WaitGroup
	for i, t := range targets {
		if !shared[i] || !results[i].OK {
			continue
		}
		u, err := url.Parse(t.Endpoint)
		if err != nil {
			continue
		}
		network, addr := "tcp", u.Host
		if u.Scheme == "unix" {
			network, addr = "unix", u.Path
		}
		wg.Go(func() {
			err := dial(network, addr, timeout)
			var ne net.Error
			// Refused or gone: re-probe. A slow connect is left to the shared
			// result (the probe that made it waited already).
			gone[i] = err != nil && !(errors.As(err, &ne) && ne.Timeout())
		})
	}
	wg.Wait()
	return gone
}

// Record shares results found another way (a buildkitd just started).
func (p *Prober) Record(ctx context.Context, results ...cloud.ProbeResult) error {
	return p.update(ctx, func(c *probeCache) {
		for _, r := range results {
			c.Results[cloud.ProbeTarget{Kind: r.Kind, Endpoint: r.Endpoint}.Key()] = r
		}
	})
}

// MarkDown shares that t is down, for why, with the host's next jobs until
// the cache's TTL has passed: a node that lost a build mid-build is not
// routed to again on the strength of an older healthy probe.
func (p *Prober) MarkDown(ctx context.Context, t cloud.ProbeTarget, why string) error {
	return p.update(ctx, func(c *probeCache) {
		c.Results[t.Key()] = cloud.ProbeResult{Kind: t.Kind, Endpoint: t.Endpoint, Error: why, At: p.now()}
	})
}

// update changes the shared cache under its lock, waiting for it no longer
// than ctx lasts.
func (p *Prober) update(ctx context.Context, change func(*probeCache)) error {
	if p.CacheDir == "" || p.TTL <= 0 {
		return nil
	}
	release, err := p.lock(ctx, p.now().Add(p.Timeout+cloudGrace))
	if err != nil {
		return err
	}
	defer release()
	cache := p.readCache()
	change(&cache)
	return p.writeCache(cache)
}

func (p *Prober) fresh(r cloud.ProbeResult) bool {
	age := p.now().Sub(r.At)
	return age >= -time.Second && age < p.TTL
}

// run probes targets with dockhand-cloud (or p.Run), bounded by Timeout
// and ctx.
func (p *Prober) run(ctx context.Context, targets []cloud.ProbeTarget) []cloud.ProbeResult {
	deadline := p.now().Add(p.Timeout)
	req := cloud.ProbeRequest{Deadline: deadline, Timeout: p.Timeout, Targets: targets}
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(cloudGrace))
	defer cancel()
	runner := p.Run
	if runner == nil {
		runner = p.exec
	}
	results, err := runner(ctx, req)
	if err == nil && len(results) != len(targets) {
		err = fmt.Errorf("%d results for %d targets", len(results), len(targets))
	}
	if err != nil {
		results = make([]cloud.ProbeResult, len(targets))
		for i, t := range targets {
			results[i] = cloud.ProbeResult{Kind: t.Kind, Endpoint: t.Endpoint, Error: "probe failed: " + err.Error(), At: p.now()}
		}
	}
	return results
}

// exec runs `dockhand-cloud probe`.
func (p *Prober) exec(ctx context.Context, req cloud.ProbeRequest) ([]cloud.ProbeResult, error) {
	var resp cloud.ProbeResponse
	if err := cloud.Run(ctx, p.Cloud, p.Env, cloud.Probe, req, &resp); err != nil {
		return nil, err
	}
	return resp.Results, nil
}

// lock takes the cache lock, waiting until deadline at most (a job that is
// probing holds it for at most its probe timeout) and no longer than ctx
// lasts.
func (p *Prober) lock(ctx context.Context, deadline time.Time) (func(), error) {
	release, err := jsonfile.LockUntil(ctx, filepath.Join(p.CacheDir, probeLockFile), deadline)
	if err != nil {
		return nil, fmt.Errorf("probe cache: %w; probing without it", err)
	}
	return release, nil
}

// Cached is what the host's probe cache holds now: the results still
// fresh, by target key (ProbeTarget.Key).
func (p *Prober) Cached() Results { return p.readCache().Results }

func (p *Prober) readCache() probeCache {
	c := probeCache{Version: probeCacheVersion, Results: map[string]cloud.ProbeResult{}}
	read, err := jsonfile.Read[probeCache](filepath.Join(p.CacheDir, probeCacheFile))
	if err != nil || read.Version != probeCacheVersion {
		return c // missing, unreadable or another version's: start afresh
	}
	for k, r := range read.Results {
		if p.fresh(r) {
			c.Results[k] = r
		}
	}
	c.Routed = read.Routed
	return c
}

func (p *Prober) writeCache(c probeCache) error {
	for k, r := range c.Results {
		if !p.fresh(r) {
			delete(c.Results, k)
		}
	}
	// A route older than TTL is older than every result it could add to.
	for k, routes := range c.Routed {
		routes = slices.DeleteFunc(routes, func(at time.Time) bool { return p.now().Sub(at) >= p.TTL })
		if len(routes) == 0 {
			delete(c.Routed, k)
		} else {
			c.Routed[k] = routes
		}
	}
	return jsonfile.Write(filepath.Join(p.CacheDir, probeCacheFile), c)
}
