package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/internal/jsonfile"
)

// fakeRun answers every target as healthy, counting calls; release (if not
// nil) holds each call until it is closed.
func fakeRun(calls *atomic.Int32, release chan struct{}, clock func() time.Time) func(context.Context, cloud.ProbeRequest) ([]cloud.ProbeResult, error) {
	return func(_ context.Context, req cloud.ProbeRequest) ([]cloud.ProbeResult, error) {
		calls.Add(1)
		if release != nil {
			<-release
		}
		out := make([]cloud.ProbeResult, len(req.Targets))
		for i, t := range req.Targets {
			out[i] = cloud.ProbeResult{Kind: t.Kind, Endpoint: t.Endpoint, OK: true, At: clock()}
		}
		return out, nil
	}
}

var twoTargets = []cloud.ProbeTarget{
	{Kind: cloud.ProbeBuildkit, Endpoint: "tcp://10.0.0.1:1234", TLS: buildx.TLS{CA: "/ca.pem"}},
	{Kind: cloud.ProbeBuildkit, Endpoint: "tcp://10.0.0.2:1234"},
}

func TestConcurrentJobsProbeOnce(t *testing.T) {
	dir := t.TempDir()
	var calls atomic.Int32
	release := make(chan struct{})
	const jobs = 8
	reports := make([]ProbeReport, jobs)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Go(func() {
			p := &Prober{CacheDir: dir, TTL: 5 * time.Second, Timeout: 2 * time.Second, Run: fakeRun(&calls, release, time.Now), Dial: dialOK}
			reports[i] = p.Probe(t.Context(), twoTargets)
		})
	}
	// Let the first probe finish only once it is running; the others are
	// waiting on the lock or will find the cache.
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d probes for %d concurrent jobs, want 1", n, jobs)
	}
	probed, shared := 0, 0
	for _, r := range reports {
		probed += r.Probed
		shared += r.Shared
		for _, res := range r.Results {
			if !res.OK {
				t.Errorf("result %+v", res)
			}
		}
	}
	if probed != 2 || shared != 2*(jobs-1) {
		t.Errorf("probed %d, shared %d; want 2 and %d", probed, shared, 2*(jobs-1))
	}
	fi, err := os.Stat(filepath.Join(dir, probeCacheFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file: %v, mode %v", err, fi.Mode())
	}
}

func TestProbeCacheExpiresAndKeysByTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := func() time.Time { return now }
	var calls atomic.Int32
	p := &Prober{CacheDir: dir, TTL: 5 * time.Second, Timeout: time.Second, Now: clock, Run: fakeRun(&calls, nil, clock), Dial: dialOK}
	if r := p.Probe(t.Context(), twoTargets); r.Probed != 2 || r.Shared != 0 {
		t.Fatalf("first probe: %+v", r)
	}
	now = now.Add(2 * time.Second)
	if r := p.Probe(t.Context(), twoTargets); r.Probed != 0 || r.Shared != 2 || r.Age < time.Second {
		t.Errorf("within the TTL: %+v", r)
	}
	// Another client certificate is another target.
	other := []cloud.ProbeTarget{{Kind: cloud.ProbeBuildkit, Endpoint: "tcp://10.0.0.1:1234", TLS: buildx.TLS{CA: "/ca.pem", Cert: "/other.pem", Key: "/other-key.pem"}}}
	if r := p.Probe(t.Context(), other); r.Probed != 1 {
		t.Errorf("other TLS material shared a result: %+v", r)
	}
	now = now.Add(5 * time.Second)
	if r := p.Probe(t.Context(), twoTargets); r.Probed != 2 {
		t.Errorf("after the TTL: %+v", r)
	}
	// Record shares a result found another way.
	if err := p.Record(t.Context(), cloud.ProbeResult{Kind: cloud.ProbeBuildkit, Endpoint: "unix:///s.sock", OK: true, At: now}); err != nil {
		t.Fatal(err)
	}
	if r := p.Probe(t.Context(), []cloud.ProbeTarget{{Kind: cloud.ProbeBuildkit, Endpoint: "unix:///s.sock"}}); r.Shared != 1 || !r.Results[0].OK {
		t.Errorf("a recorded result is not shared: %+v", r)
	}
	// A shared healthy endpoint that now refuses connections is probed
	// again; one that is merely slow to connect keeps its shared result.
	p.Dial = func(_, addr string, _ time.Duration) error {
		switch addr {
		case "10.0.0.1:1234":
			return syscall.ECONNREFUSED
		case "10.0.0.2:1234":
			return timeoutErr{}
		}
		return nil
	}
	if r := p.Probe(t.Context(), twoTargets); r.Probed != 1 || r.Shared != 1 {
		t.Errorf("with the first endpoint refusing: %+v", r)
	}
	p.Dial = dialOK

	// No sharing at all when the TTL is zero.
	calls.Store(0)
	p.TTL = 0
	p.Probe(t.Context(), twoTargets)
	p.Probe(t.Context(), twoTargets)
	if calls.Load() != 2 {
		t.Errorf("TTL 0: %d probe runs, want 2", calls.Load())
	}
}

func dialOK(string, string, time.Duration) error { return nil }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestProbeFailureIsAResult(t *testing.T) {
	p := &Prober{Timeout: time.Second, Run: func(context.Context, cloud.ProbeRequest) ([]cloud.ProbeResult, error) {
		return nil, errors.New("boom")
	}}
	r := p.Probe(t.Context(), twoTargets)
	for i, res := range r.Results {
		if res.OK || res.Endpoint != twoTargets[i].Endpoint || !strings.Contains(res.Error, "boom") {
			t.Errorf("result %d = %+v", i, res)
		}
	}
	p = &Prober{Timeout: time.Second, Cloud: filepath.Join(t.TempDir(), cloud.Binary)}
	r = p.Probe(t.Context(), twoTargets)
	if !strings.Contains(r.Results[0].Error, "not found (it is installed next to dockhand)") {
		t.Errorf("missing dockhand-cloud: %+v", r.Results[0])
	}
	// A corrupt cache is ignored, not fatal.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, probeCacheFile), []byte("{not json"), 0o600)
	var calls atomic.Int32
	p = &Prober{CacheDir: dir, TTL: time.Minute, Timeout: time.Second, Run: fakeRun(&calls, nil, time.Now), Dial: dialOK}
	if r := p.Probe(t.Context(), twoTargets); r.Probed != 2 || !r.Results[0].OK {
		t.Errorf("with a corrupt cache: %+v", r)
	}
}

// TestRoutedJobsCountUntilTheNextProbe: a job routed to a node counts on
// its load for the host's next jobs while they share the probe that could
// not see it; a new probe (which sees the build itself) drops it.
func TestRoutedJobsCountUntilTheNextProbe(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := func() time.Time { return now }
	var calls atomic.Int32
	p := &Prober{CacheDir: dir, TTL: 5 * time.Second, Timeout: time.Second, Now: clock, Run: fakeRun(&calls, nil, clock), Dial: dialOK}
	if r := p.Probe(t.Context(), twoTargets); r.Results[0].Routed != 0 {
		t.Fatalf("first probe: %+v", r.Results[0])
	}
	for range 2 {
		now = now.Add(time.Second)
		if err := p.RecordRoute(t.Context(), twoTargets[0]); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Second)
	r := p.Probe(t.Context(), twoTargets)
	if r.Shared != 2 || r.Results[0].Routed != 2 || r.Results[1].Routed != 0 {
		t.Errorf("shared probe after two routes: %+v", r)
	}
	if n, known := r.Results[0].Load(); !known || n != 2 {
		t.Errorf("Load = %d, %v; want 2, known", n, known)
	}
	now = now.Add(5 * time.Second)
	if r := p.Probe(t.Context(), twoTargets); r.Probed != 2 || r.Results[0].Routed != 0 {
		t.Errorf("a new probe still counts the routes: %+v", r)
	}
	// Without a shared cache there is nothing to count.
	q := &Prober{TTL: 5 * time.Second, Timeout: time.Second, Now: clock, Run: fakeRun(&calls, nil, clock)}
	if err := q.RecordRoute(t.Context(), twoTargets[0]); err != nil {
		t.Fatal(err)
	}
	if r := q.Probe(t.Context(), twoTargets); r.Results[0].Routed != 0 {
		t.Errorf("no cache: %+v", r.Results[0])
	}
}

// A job's cancel ends its probes and its wait for the shared cache at once,
// however long probe_timeout is, and what the cut-short probes "found" is
// not shared with the host's next jobs.
func TestCancelEndsProbeAndIsNotShared(t *testing.T) {
	dir := t.TempDir()
	started := make(chan struct{}, 1)
	p := &Prober{CacheDir: dir, TTL: time.Hour, Timeout: time.Hour, Dial: dialOK,
		Run: func(ctx context.Context, req cloud.ProbeRequest) ([]cloud.ProbeResult, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan ProbeReport, 1)
	go func() { done <- p.Probe(ctx, twoTargets) }()
	<-started
	cancel()
	select {
	case r := <-done:
		if r.Results[0].OK || !strings.Contains(r.Results[0].Error, "canceled") {
			t.Errorf("cancelled probe: %+v", r.Results[0])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a cancelled probe still runs")
	}

	var calls atomic.Int32
	next := &Prober{CacheDir: dir, TTL: time.Hour, Timeout: time.Second, Run: fakeRun(&calls, nil, time.Now), Dial: dialOK}
	if r := next.Probe(t.Context(), twoTargets); r.Probed != 2 || r.Shared != 0 || !r.Results[0].OK {
		t.Errorf("next job: %+v, want its own probes, not the cancelled ones shared", r)
	}

	// Another job holds the cache: a cancelled job waits neither to probe
	// nor to record its route.
	release, err := jsonfile.Lock(t.Context(), filepath.Join(dir, probeLockFile), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	p.Run = fakeRun(&calls, nil, time.Now)
	ended := make(chan error, 1)
	go func() {
		r := p.Probe(ctx, twoTargets)
		if !strings.Contains(r.Note, "canceled") {
			ended <- errors.New("probe note: " + r.Note)
			return
		}
		ended <- p.RecordRoute(ctx, twoTargets[0])
	}()
	select {
	case err := <-ended:
		if err == nil || !strings.Contains(err.Error(), "canceled") {
			t.Errorf("cancelled while another job holds the cache: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a cancelled job still waits for the probe cache")
	}
}
