package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/dockhand-ci/dockhand/registry"
	"github.com/dockhand-ci/dockhand/test/ecrapi"
)

// The first-get benchmark: jobs through `dockhand bootstrap` on one host
// (one state dir) whose command is one `docker-credential-dockhand get` of
// an ECR registry, against the fake ECR API, with the token cache aged by
// firstGetAge before every firstGetAgeEvery-th job (what that much time
// would do to it), with the bootstrap's background token refresh off and
// on, the jobs of the two hosts alternating.

const (
	firstGetJobs     = 50
	firstGetAgeEvery = 5
	// firstGetAge takes a token past half its life (a get fetches it),
	// still valid.
	firstGetAge = 6*time.Hour + 10*time.Minute
)

// firstGetCommand is the job's command: one timed get, then the number of
// ECR API requests the job's helper made (the job dir's count).
const firstGetCommand = `s=$EPOCHREALTIME; printf %s ` + benchRegistry + ` | docker-credential-dockhand get >/dev/null; ` +
	`e=$EPOCHREALTIME; echo "first-get $s $e $(cat "$DOCKHAND_JOB_DIR/` + registry.ECRCallsFile + `" 2>/dev/null | wc -l)"`

var firstGetLine = regexp.MustCompile(`(?m)^first-get ([0-9.]+) ([0-9.]+) +([0-9]+)\s*$`)

// firstGetHost is one host of the comparison.
type firstGetHost struct {
	name    string
	config  string
	state   string
	latency []time.Duration
	cold    []time.Duration // the latencies of the cold ones
	warm    []time.Duration
}

func runFirstGetOnly(int) error {
	dockhand, toolBin, dir, done, err := setup()
	if err != nil {
		return err
	}
	defer done()
	return firstGetBench(dockhand, toolBin, dir)
}

func firstGetBench(dockhand, toolBin, dir string) error {
	fake, err := ecrapi.Start(ecrapi.Options{Keys: map[string]string{benchKey: benchSecret}, Password: "bench-registry-password"})
	if err != nil {
		return err
	}
	defer fake.Close()
	env := append(bootstrapEnv(toolBin, dir), "BUILDKITE_COMMAND="+firstGetCommand,
		"AWS_ACCESS_KEY_ID="+benchKey, "AWS_SECRET_ACCESS_KEY="+benchSecret,
		"AWS_ENDPOINT_URL_ECR="+fake.URL, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"))
	var hosts []*firstGetHost
	for _, on := range []bool{false, true} {
		h := &firstGetHost{name: "refresh off", state: filepath.Join(dir, fmt.Sprintf("firstget-state-%v", on)),
			config: filepath.Join(dir, fmt.Sprintf("firstget-%v.toml", on))}
		if on {
			h.name = "refresh on"
		}
		toml := fmt.Sprintf("state_dir = %q\n[registry]\nrefresh_tokens = %v\n", h.state, on)
		if err := os.WriteFile(h.config, []byte(toml), 0o600); err != nil {
			return err
		}
		hosts = append(hosts, h)
	}
	start := time.Now()
	callsBefore := map[string]int{}
	calls := map[string]int{}
	for i := range firstGetJobs {
		for _, h := range hosts {
			if i > 0 && i%firstGetAgeEvery == 0 {
				if err := ageTokens(filepath.Join(h.state, registry.TokenCacheDirName, "ecr.json"), firstGetAge); err != nil {
					return fmt.Errorf("%s: %w", h.name, err)
				}
			}
			callsBefore[h.name] = fake.Calls(ecrapi.OpGetAuthorizationToken)
			cmd := exec.Command(dockhand, "bootstrap", "--config", h.config)
			cmd.Env, cmd.Dir = append(env, fmt.Sprintf("BUILDKITE_JOB_ID=firstget-%d", i)), dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s, job %d: %w\n%s", h.name, i, err, out)
			}
			// The refresh may outlive the get: the job's count goes by
			// calls finished by the bootstrap's exit.
			calls[h.name] += fake.Calls(ecrapi.OpGetAuthorizationToken) - callsBefore[h.name]
			m := firstGetLine.FindSubmatch(out)
			if m == nil {
				return fmt.Errorf("%s, job %d: no first-get line:\n%s", h.name, i, out)
			}
			s, _ := strconv.ParseFloat(string(m[1]), 64)
			e, _ := strconv.ParseFloat(string(m[2]), 64)
			took := time.Duration((e - s) * float64(time.Second))
			h.latency = append(h.latency, took)
			if n, _ := strconv.Atoi(string(m[3])); n > 0 {
				h.cold = append(h.cold, took)
			} else {
				h.warm = append(h.warm, took)
			}
		}
	}
	off, on := hosts[0], hosts[1]
	fmt.Printf("\n| first `get` of an ECR registry in each of %d jobs (`dockhand bootstrap`, one host, fake ECR API; tokens aged %s before every %dth job) | refresh off | refresh on |\n|---|---|---|\n",
		firstGetJobs, firstGetAge, firstGetAgeEvery)
	share := func(h *firstGetHost) string {
		return fmt.Sprintf("%d/%d (%.0f %%)", len(h.cold), len(h.latency), 100*float64(len(h.cold))/float64(len(h.latency)))
	}
	median := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "—"
		}
		return ms(percentile(ds, 50))
	}
	fmt.Printf("| cold first gets (the job's get called the API) | %s | %s |\n", share(off), share(on))
	fmt.Printf("| first-get latency, median | %s | %s |\n", ms(percentile(off.latency, 50)), ms(percentile(on.latency, 50)))
	fmt.Printf("| first-get latency, p90 | %s | %s |\n", ms(percentile(off.latency, 90)), ms(percentile(on.latency, 90)))
	fmt.Printf("| first-get latency, max | %s | %s |\n", ms(percentile(off.latency, 100)), ms(percentile(on.latency, 100)))
	fmt.Printf("| latency of the cold ones, median | %s | %s |\n", median(off.cold), median(on.cold))
	fmt.Printf("| latency of the warm ones, median | %s | %s |\n", median(off.warm), median(on.warm))
	fmt.Printf("| GetAuthorizationToken calls in all (the job's and the refresh's) | %d | %d |\n", calls[off.name], calls[on.name])
	fmt.Printf("\n(%d jobs in %s)\n", 2*firstGetJobs, time.Since(start).Round(time.Second))
	return nil
}

// percentile is the p-th percentile of ds (nearest rank); it sorts ds.
func percentile(ds []time.Duration, p int) time.Duration {
	slices.Sort(ds)
	i := (p*len(ds)+99)/100 - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// ageTokens rewrites the token cache as if d had passed: every time in it
// moves d into the past.
func ageTokens(file string, d time.Duration) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	var tokens map[string]registry.Token
	if err := json.Unmarshal(f["tokens"], &tokens); err != nil {
		return err
	}
	for k, t := range tokens {
		t.RequestedAt, t.ExpiresAt = t.RequestedAt.Add(-d), t.ExpiresAt.Add(-d)
		if !t.UsedAt.IsZero() {
			t.UsedAt = t.UsedAt.Add(-d)
		}
		tokens[k] = t
	}
	if f["tokens"], err = json.Marshal(tokens); err != nil {
		return err
	}
	out, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := file + ".bench"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
