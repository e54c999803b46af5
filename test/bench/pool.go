package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// The pool simulation: real buildkitd, each running few steps at once;
// jobs from several hosts (each its own state dir, probing on its own);
// pipelines drawn from a skewed mix (one hot pipeline). Every job's builder
// is chosen as a job's is (builder.Select with dockhand-cloud's probes),
// then it builds: the pipeline's dependency step (cached where that
// pipeline built before) and a step of its own.
const (
	poolNodes       = 3
	poolParallelism = 2  // max-parallelism of each node
	poolHosts       = 6  // concurrent jobs, one per host
	poolJobsPerHost = 5  // jobs each host runs one after the other
	poolDepSeconds  = 4  // the pipeline's dependency step, when not cached
	poolOwnSeconds  = 3  // the job's own step
	poolHotShare    = 60 // percent of jobs of the hot pipeline
)

// poolMode is one way of routing the jobs.
type poolMode struct {
	name    string
	factor  int  // remote.balance_factor when dockhand routes
	random  bool // a random healthy node instead of dockhand's choice
	noCache bool // the plain stack: every job on a cold builder
}

// poolResult is what a mode's run measured.
type poolResult struct {
	makespan, p95 time.Duration
	perNode       []int
	hits, jobs    int
}

func runPoolOnly(int) error {
	dockhand, _, dir, done, err := setup()
	if err != nil {
		return err
	}
	defer done()
	return poolBench(dockhand, dir)
}

func poolBench(dockhand, dir string) error {
	kit, kitDir, err := newKit(dir, "pool")
	if err != nil {
		return err
	}
	defer kit.Close()
	reg, err := kit.StartRegistry(harness.RegistryOptions{})
	if err != nil {
		return err
	}
	fleet, err := kit.NewFleetTLS("fleet")
	if err != nil {
		return err
	}
	var nodes []*harness.Buildkitd
	var eps []string
	for i := range poolNodes {
		b, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: fmt.Sprintf("pool-%d", i), TCP: true, TLS: &fleet.Server,
			MaxParallelism: poolParallelism, InsecureRegistries: []string{reg.Host}})
		if err != nil {
			return err
		}
		nodes, eps = append(nodes, b), append(eps, b.TCPAddr)
	}
	base, err := kit.PushBaseImage(nodes[0], reg)
	if err != nil {
		return err
	}
	cfg := config.Default("bench")
	cfg.Builders = []string{config.BuilderRemote}
	cfg.Remote.Endpoints = eps
	cfg.Remote.CA, cfg.Remote.Cert, cfg.Remote.Key = fleet.Client.CA, fleet.Client.Cert, fleet.Client.Key

	modes := []poolMode{
		{name: "affinity only (balance_factor = 0)", factor: 0},
		{name: "bounded loads, c = 1.25 (125)", factor: 125},
		{name: "bounded loads, c = 1.5 (150)", factor: 150},
		{name: "bounded loads, c = 2 (200)", factor: 200},
		{name: "random node", random: true},
		{name: "plain stack: a cold builder per job", random: true, noCache: true},
	}
	jobs := poolHosts * poolJobsPerHost
	serial := time.Duration(jobs*(poolDepSeconds+poolOwnSeconds)) * time.Second
	fmt.Printf("\n| pool: %d buildkitd (max-parallelism %d), %d jobs from %d hosts, %d%% one pipeline | makespan | p95 job | builds per node max / mean | cache hits |\n|---|---|---|---|---|\n",
		poolNodes, poolParallelism, jobs, poolHosts, poolHotShare)
	for _, m := range modes {
		for _, b := range nodes { // every mode starts on cold nodes
			if out, err := kit.Command(kitDir, nil, "buildctl", "--addr", b.Addr, "prune", "--all").CombinedOutput(); err != nil {
				return fmt.Errorf("pruning: %w\n%s", err, out)
			}
		}
		r, err := poolRun(m, cfg, dockhand, kit, base, eps, filepath.Join(dir, "pool-"+strings.Fields(m.name)[0]+fmt.Sprint(m.factor)))
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		mean := float64(r.jobs) / float64(len(r.perNode))
		fmt.Printf("| %s | %.1f s | %.1f s | %d / %.1f | %d%% |\n", m.name, r.makespan.Seconds(), r.p95.Seconds(), slices.Max(r.perNode), mean, 100*r.hits/r.jobs)
	}
	fmt.Printf("\nA job alone takes about %d s warm, %d s cold; all %d one after another, cold: %.0f s. Cache hits: the pipeline's dependency step CACHED (a build that joins the same step while another build runs it is not counted).\n",
		poolOwnSeconds, poolDepSeconds+poolOwnSeconds, jobs, serial.Seconds())
	return nil
}

// pipelineOf is job k's pipeline: the hot one for poolHotShare percent of
// the jobs, spread through the run, else one of four quiet ones.
func pipelineOf(k int) string {
	if k*poolHotShare/100 != (k+1)*poolHotShare/100 {
		return "hot"
	}
	return fmt.Sprintf("quiet-%d", k%4)
}

var cachedDep = regexp.MustCompile(`(?m)^#(\d+) \[[^\]]*\] RUN echo dep-`)

func poolRun(m poolMode, cfg *config.Config, dockhand string, kit *harness.Kit, base string, eps []string, dir string) (poolResult, error) {
	c := *cfg
	tls := []string{"--tlscacert", c.Remote.CA, "--tlscert", c.Remote.Cert, "--tlskey", c.Remote.Key}
	c.Remote.BalanceFactor = m.factor
	var mu sync.Mutex
	res := poolResult{perNode: make([]int, len(eps))}
	var times []time.Duration
	var firstErr error
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	var wg sync.WaitGroup
	for h := range poolHosts {
		state := filepath.Join(dir, fmt.Sprintf("host-%d", h))
		wg.Go(func() {
			for j := range poolJobsPerHost {
				k := j*poolHosts + h
				slug := pipelineOf(k)
				t0 := time.Now()
				ep, err := "", error(nil)
				if m.random {
					mu.Lock()
					ep = eps[rng.IntN(len(eps))]
					mu.Unlock()
				} else {
					e := config.FromSlice([]string{"PATH=/usr/bin:/bin", "BUILDKITE_PIPELINE_SLUG=" + slug, fmt.Sprintf("BUILDKITE_JOB_ID=job-%d", k)})
					var sel *builder.Selection
					sel, _, err = selectAsJob(builder.SetupOptions{Config: &c, Env: e, StateDir: state, Self: dockhand,
						DockerSocket: filepath.Join(dir, "no-docker.sock")})
					if err == nil && sel.Builder != nil {
						ep = sel.Builder.Endpoint()
					} else if err == nil {
						err = fmt.Errorf("no builder chosen")
					}
				}
				hit := false
				if err == nil {
					hit, err = poolBuild(kit, tls, dir, ep, base, slug, k, m.noCache)
				}
				took := time.Since(t0)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("job %d: %w", k, err)
				}
				times = append(times, took)
				res.perNode[slices.Index(eps, ep)]++
				res.jobs++
				if hit {
					res.hits++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.makespan = time.Since(start)
	slices.Sort(times)
	res.p95 = times[(len(times)*95+99)/100-1]
	return res, firstErr
}

// poolBuild runs job k's build on ep and reports whether the pipeline's
// dependency step came from the cache.
func poolBuild(kit *harness.Kit, tls []string, dir, ep, base, slug string, k int, noCache bool) (bool, error) {
	ctx := filepath.Join(dir, fmt.Sprintf("job-%d", k))
	if err := os.MkdirAll(ctx, 0o700); err != nil {
		return false, err
	}
	dockerfile := fmt.Sprintf("FROM %s\nRUN echo dep-%s && sleep %d\nRUN echo own-%d && sleep %d\n", base, slug, poolDepSeconds, k, poolOwnSeconds)
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o600); err != nil {
		return false, err
	}
	args := append([]string{"--addr", ep}, tls...)
	args = append(args, "build", "--progress", "plain", "--frontend", "dockerfile.v0", "--local", "context="+ctx, "--local", "dockerfile="+ctx)
	if noCache {
		args = append(args, "--no-cache")
	}
	out, err := kit.Command(ctx, nil, "buildctl", args...).CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("%w\n%s", err, out)
	}
	if m := cachedDep.FindSubmatch(out); m != nil {
		return strings.Contains(string(out), "#"+string(m[1])+" CACHED"), nil
	}
	return false, nil
}
