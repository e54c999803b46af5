package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/bootstrap"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/jobstate"
	"github.com/dockhand-ci/dockhand/registry"
)

// cloudBinary is dockhand-cloud, installed next to dockhand.
func cloudBinary() string { return cloud.Path(self()) }

// helperConfig loads the configuration the credential helper serves: in a
// job, the file the bootstrap used (recorded in the job state), else the
// usual one. The helper runs on every registry request of a build, so
// warnings are not repeated here (the bootstrap printed them); a broken
// file means the built-in defaults.
func helperConfig(jobDir string, e *agentenv.Environment) *config.Config {
	path := ""
	if jobDir != "" {
		if st, err := jobstate.Read(jobDir); err == nil {
			path = st.ConfigPath
		}
	}
	cfg, _, err := config.Load(config.Options{Flag: path, Env: e})
	if err != nil {
		return config.Default(config.Queue(e))
	}
	return cfg
}

// tokenStateDir is the state dir holding the host's shared token cache: the
// one the job's dir lives in (STATE/jobs/JOB), else the configured one (or
// its fallback, as the bootstrap picks it).
func tokenStateDir(jobDir string, cfg *config.Config, e *agentenv.Environment) string {
	if jobDir != "" {
		if jobs := filepath.Dir(jobDir); filepath.Base(jobs) == "jobs" {
			return filepath.Dir(jobs)
		}
	}
	tmpdir, _ := e.Get("TMPDIR")
	dir, _, err := bootstrap.StateDir(cfg.StateDir, tmpdir, os.Getuid())
	if err != nil {
		return ""
	}
	return dir
}

// helperFor builds the credential helper for configuration cfg.
func helperFor(cfg *config.Config, e *agentenv.Environment, stderr io.Writer) *registry.Helper {
	jobDir, _ := e.Get(registry.JobDirVar)
	return newHelper(jobDir, tokenStateDir(jobDir, cfg, e), bootstrap.RegistrySettings(cfg), cfg.Debug, e, stderr)
}

func newHelper(jobDir, stateDir string, settings registry.Settings, debug bool, e *agentenv.Environment, stderr io.Writer) *registry.Helper {
	if v, _ := e.Get("BUILDKITE_AGENT_DEBUG"); v == "true" || v == "1" {
		debug = true
	}
	return registry.New(registry.Options{
		JobDir:   jobDir,
		StateDir: stateDir,
		Settings: settings,
		Env:      e,
		UID:      os.Getuid(),
		Cloud:    cloudBinary(),
		Log:      joblog.New(stderr),
		Debug:    debug,
	})
}

// credentialHelper is docker-credential-dockhand. In a job it serves the
// settings the bootstrap recorded in the job state: it runs on every
// registry request of a build, so it parses no configuration there.
func credentialHelper(args []string, e *agentenv.Environment, io stdio) error {
	jobDir, _ := e.Get(registry.JobDirVar)
	var st jobstate.State
	if jobDir != "" {
		st, _ = jobstate.Read(jobDir)
	}
	var h *registry.Helper
	if st.Registry != nil {
		h = newHelper(jobDir, tokenStateDir(jobDir, config.Default(config.Queue(e)), e), *st.Registry, st.Debug, e, io.err)
	} else {
		h = helperFor(helperConfig(jobDir, e), e, io.err)
	}
	if err := registry.Serve(h, args, io.in, io.out); err != nil {
		return protocolError{err}
	}
	return nil
}

// hostList is a repeatable --registry flag.
type hostList []string

func (h *hostList) String() string { return strings.Join(*h, ",") }
func (h *hostList) Set(v string) error {
	*h = append(*h, v)
	return nil
}

// configuredRegistries lists the registries the configuration names: ECR
// aliases, static credentials, Buildkite Packages and the cache repository's
// host, then the ones asked for on the command line.
func configuredRegistries(cfg *config.Config, extra []string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, item := range append(slices.Clone(cfg.Registry.ECRAliases), cfg.Registry.NSCRAliases...) {
		host, _, _ := strings.Cut(item, "=")
		add(strings.ToLower(strings.TrimSpace(host)))
	}
	for _, item := range cfg.Registry.Static {
		host, _, _ := strings.Cut(item, "=")
		add(strings.ToLower(strings.TrimSpace(host)))
	}
	if len(cfg.Packages.Registries) > 0 {
		add("packages.buildkite.com")
	}
	if repo := cfg.Cache.Repository; repo != "" {
		host, _, _ := strings.Cut(repo, "/")
		if strings.ContainsAny(host, ".:") {
			add(strings.ToLower(host))
		}
	}
	for _, h := range extra {
		add(h)
	}
	return out
}

// credentialCheck is what doctor found for one registry; never a secret.
type credentialCheck struct {
	Registry  string    `json:"registry"`
	Status    string    `json:"status"` // ok, anonymous or fail
	Source    string    `json:"source"`
	User      string    `json:"user,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// checkCredentials asks the helper for each host's credential, as docker
// would, and keeps where it came from, not the credential.
func checkCredentials(ctx context.Context, h *registry.Helper, hosts []string) []credentialCheck {
	checks := make([]credentialCheck, 0, len(hosts))
	for _, host := range hosts {
		c, route, err := h.Lookup(ctx, host)
		check := credentialCheck{Registry: host, Source: string(route.Source)}
		if route.AliasOf != "" {
			check.Source += " (alias of " + route.AliasOf + ")"
		}
		switch {
		case registry.IsNoCredentials(err):
			check.Status, check.Error = "anonymous", err.Error()
		case err != nil:
			check.Status, check.Error = "fail", err.Error()
		default:
			check.Status, check.Source, check.User, check.Detail, check.ExpiresAt = "ok", string(c.Source), c.Username, c.Detail, c.ExpiresAt
		}
		checks = append(checks, check)
	}
	return checks
}

// writeCredentialChecks is doctor's credentials section: for each
// registry, whether a credential can be had and where it comes from. The
// secret is never printed.
func writeCredentialChecks(w io.Writer, cfg *config.Config, checks []credentialCheck) {
	fmt.Fprintf(w, "\n# credentials (docker-credential-dockhand)\n")
	if len(checks) == 0 {
		fmt.Fprintf(w, "#   no registry configured; ECR, ECR Public and nscr.io hosts are served as they come (check one with --registry HOST)\n")
		return
	}
	if regs := cfg.Packages.Registries; len(regs) > 1 {
		fmt.Fprintf(w, "#   packages.buildkite.com is served with an OIDC token for %s only (a helper sees the host, not the path); %s are not\n",
			regs[0], strings.Join(regs[1:], ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	for _, c := range checks {
		switch c.Status {
		case "ok":
			line := fmt.Sprintf("%s\tok\t%s: user %q, %s", c.Registry, c.Source, c.User, c.Detail)
			if !c.ExpiresAt.IsZero() {
				line += fmt.Sprintf(", expires in %s", time.Until(c.ExpiresAt).Round(time.Minute))
			}
			fmt.Fprintln(tw, line)
		case "fail":
			fmt.Fprintf(tw, "%s\tFAIL\t%s: %s\n", c.Registry, c.Source, c.Error)
		default:
			fmt.Fprintf(tw, "%s\t%s\t%s: %s\n", c.Registry, c.Status, c.Source, c.Error)
		}
	}
}
