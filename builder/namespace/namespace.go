// Package namespace is the Namespace builder kind: nsc's auth and buildx
// setup for a job, and the tenant tokens and set-ups the host's jobs share.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/proc"
	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// Audience is the OIDC audience Namespace federates Buildkite
// tokens for.
const Audience = "federation.namespaceapis.com"

// TokenVar is where docker-credential-nsc (nscr.io credentials)
// finds the job's Namespace token.
const TokenVar = "NSC_TOKEN_FILE"

// Namespace sets a job up on Namespace's remote builders with nsc, keeping
// everything nsc writes (its token, its state, its certificates) inside the
// job dir: XDG_CONFIG_HOME points there, and its builder goes into the job's
// docker config.
type Namespace struct {
	NSC          string // the nsc executable
	Agent        string // buildkite-agent, for the OIDC token (auth "oidc")
	Auth         string // "oidc" or "cognito"
	TenantID     string
	AWSRegion    string // cognito
	IdentityPool string // cognito
	JobDir       string
	DockerConfig string
	Env          []string // the job's environment, for nsc and buildkite-agent
	// HostPlatform is this host's os/arch: its node goes first (nsc writes
	// one node per platform in the API's order, amd64 first).
	HostPlatform string
	Timeout      time.Duration
	// DefaultLoad: the host has a docker engine, so builds with no output
	// load their image into it, as they would on the engine's own builder
	// (each Namespace node builds one platform: see Loadable).
	DefaultLoad bool
	// LoadDecided, when set, decides DefaultLoad just before the builder
	// setup (the docker probe may still be running while nsc authenticates).
	LoadDecided func() bool
	// Tokens shares the tenant token between the host's jobs (zero: each
	// job exchanges its own).
	Tokens TenantTokens
	// Setups shares the builder setup between the host's jobs while its
	// client certificate is valid (zero: each job runs nsc's setup).
	Setups Setups
	// TokenNote says, after SetUp, where the tenant token came from.
	TokenNote string
	// SetupNote says, after SetUp, where the builder setup came from.
	SetupNote string
	// Reused is set by SetUp when the builder is a shared setup.
	Reused bool
}

// nscDir holds nsc's files for the job.
func (n Namespace) nscDir() string { return filepath.Join(n.JobDir, "nsc") }

// TokenFile is where nsc stores the job's tenant token.
func (n Namespace) TokenFile() string {
	return filepath.Join(n.nscDir(), "config", "ns", "token.json")
}

// SetUp authenticates and sets the builder up. It returns the builder nsc
// wrote, the host platform's node first (rewritten so when nsc put another
// first), and the variables the job needs (NSC_TOKEN_FILE).
func (n *Namespace) SetUp(ctx context.Context) (buildx.Builder, map[string]string, error) {
	if n.Timeout <= 0 {
		n.Timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()
	config, state := filepath.Join(n.nscDir(), "config"), filepath.Join(n.nscDir(), "state")
	for _, d := range []string{n.nscDir(), config, state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return buildx.Builder{}, nil, err
		}
	}
	nscEnv := withEnv(n.Env, map[string]string{"XDG_CONFIG_HOME": config, "DOCKER_CONFIG": n.DockerConfig, "BUILDX_CONFIG": ""})

	if err := n.authenticate(ctx, nscEnv); err != nil {
		return buildx.Builder{}, nil, err
	}
	if n.LoadDecided != nil {
		n.DefaultLoad = n.LoadDecided()
	}
	var b buildx.Builder
	var err error
	if n.Setups.Dir == "" {
		n.SetupNote = ""
		b, err = n.setUpBuilder(ctx, nscEnv, state)
	} else {
		b, err = n.sharedBuilder(ctx, nscEnv)
	}
	if err != nil {
		return buildx.Builder{}, nil, err
	}
	return b, map[string]string{TokenVar: n.TokenFile()}, nil
}

// setUpBuilder runs `nsc docker buildx setup` with its state in state and
// reads the builder it wrote into the job's docker config, the host
// platform's node first.
func (n *Namespace) setUpBuilder(ctx context.Context, nscEnv []string, state string) (buildx.Builder, error) {
	setup := []string{"docker", "buildx", "setup", "--name", buildx.NamespaceName, "--state", state, "--background", "--use"}
	if n.DefaultLoad {
		setup = append(setup, "--default_load")
	}
	if _, err := runCommand(ctx, nscEnv, n.NSC, setup...); err != nil {
		return buildx.Builder{}, err
	}
	b, err := buildx.ReadInstance(n.DockerConfig, config.BuilderNamespace, buildx.NamespaceName)
	if err != nil {
		return buildx.Builder{}, fmt.Errorf("nsc docker buildx setup wrote no builder: %w", err)
	}
	if buildx.HostFirst(b.Nodes, n.HostPlatform) {
		if err := buildx.WriteInstance(ctx, n.DockerConfig, b); err != nil {
			return buildx.Builder{}, fmt.Errorf("putting the %s node first: %w", n.HostPlatform, err)
		}
	}
	return b, nil
}

// sharedBuilder writes the host's shared builder setup into the job's
// docker config when it is valid for a while yet; else it runs nsc's setup
// (its state in a new host-wide dir) and shares it until its client
// certificate, or the tenant token, expires. Both happen under the setup's
// lock, so jobs starting together run one setup.
func (n *Namespace) sharedBuilder(ctx context.Context, nscEnv []string) (buildx.Builder, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(n.Timeout)
	}
	release, err := n.Setups.Lock(ctx, n.TenantID, n.DefaultLoad, deadline)
	if err != nil {
		return buildx.Builder{}, fmt.Errorf("waiting for another job's builder setup: %w", err)
	}
	defer release()
	if data, exp, ok := n.Setups.Get(n.TenantID, n.DefaultLoad); ok {
		b, err := buildx.ParseInstance(config.BuilderNamespace, data)
		if err == nil {
			b.Name = buildx.NamespaceName
			err = buildx.WriteInstance(ctx, n.DockerConfig, b)
		}
		if err == nil {
			n.Reused = true
			n.SetupNote = fmt.Sprintf("builder setup shared by the host's jobs, valid %s more", time.Until(exp).Round(time.Minute))
			return b, nil
		}
	}
	state, err := n.Setups.NewState(n.TenantID, n.DefaultLoad)
	if err != nil {
		return buildx.Builder{}, err
	}
	b, err := n.setUpBuilder(ctx, nscEnv, state)
	if err != nil {
		return buildx.Builder{}, err
	}
	n.SetupNote = "set the builder up, shared with the host's jobs"
	if err := n.share(b, state); err != nil {
		n.SetupNote = "set the builder up for this job (not shared: " + err.Error() + ")"
	}
	return b, nil
}

// share records the builder nsc just set up for the host's jobs, until its
// client certificate or the tenant token expires.
func (n *Namespace) share(b buildx.Builder, state string) error {
	cert, err := os.ReadFile(b.Nodes[0].TLS.Cert)
	if err != nil {
		return fmt.Errorf("its client certificate: %w", err)
	}
	exp, err := certNotAfter(cert)
	if err != nil {
		return fmt.Errorf("its client certificate %s: %w", b.Nodes[0].TLS.Cert, err)
	}
	if data, err := os.ReadFile(n.TokenFile()); err == nil {
		if tokenExp, err := TenantTokenExpiry(data); err == nil && tokenExp.Before(exp) {
			exp = tokenExp
		}
	}
	instance, err := buildx.InstanceJSON(b)
	if err != nil {
		return err
	}
	return n.Setups.Put(n.TenantID, n.DefaultLoad, instance, state, exp)
}

// authenticate puts a tenant token where nsc reads it in the job: the one
// the host's jobs share when it is valid for a while yet, else a new one
// from an exchange, which is then shared. The exchange and the check happen
// under the tenant's lock, so jobs starting together do one exchange.
func (n *Namespace) authenticate(ctx context.Context, env []string) error {
	if n.Tokens.Dir == "" {
		n.TokenNote = "exchanged a tenant token for this job"
		return n.exchange(ctx, env)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(n.Timeout)
	}
	release, err := n.Tokens.Lock(ctx, n.TenantID, deadline)
	if err != nil {
		return fmt.Errorf("waiting for another job's token exchange: %w", err)
	}
	defer release()
	if data, exp, ok := n.Tokens.Get(n.TenantID); ok {
		if err := os.MkdirAll(filepath.Dir(n.TokenFile()), 0o700); err != nil {
			return err
		}
		if err := safefile.Write(n.TokenFile(), data); err != nil {
			return err
		}
		n.TokenNote = fmt.Sprintf("tenant token shared by the host's jobs, valid %s more", time.Until(exp).Round(time.Minute))
		return nil
	}
	if err := n.exchange(ctx, env); err != nil {
		return err
	}
	n.TokenNote = "exchanged a tenant token, shared with the host's jobs"
	data, err := os.ReadFile(n.TokenFile())
	if err == nil {
		err = n.Tokens.Put(n.TenantID, data)
	}
	if err != nil {
		n.TokenNote = "exchanged a tenant token for this job (not shared: " + err.Error() + ")"
	}
	return nil
}

// exchange runs `nsc auth exchange-*`, which stores the job's tenant token.
func (n *Namespace) exchange(ctx context.Context, env []string) error {
	switch n.Auth {
	case "cognito":
		_, err := runCommand(ctx, env, n.NSC, "auth", "exchange-aws-cognito-token",
			"--aws_region", n.AWSRegion, "--identity_pool", n.IdentityPool, "--tenant_id", n.TenantID)
		return err
	}
	if n.Agent == "" {
		return errors.New("buildkite-agent not found (BUILDKITE_BIN_PATH or PATH), needed for the OIDC token")
	}
	// The token comes to dockhand's memory, never to the job log, so the
	// agent's log redaction (which needs the Job API, not up before the
	// real bootstrap runs) is not needed; the variable is the way every
	// agent version accepts to skip it.
	agentEnv := withEnv(n.Env, map[string]string{"BUILDKITE_AGENT_OIDC_REQUEST_TOKEN_SKIP_TOKEN_REDACTION": "true"})
	token, err := runCommand(ctx, agentEnv, n.Agent, "oidc", "request-token", "--audience", Audience, "--lifetime", "120")
	if err != nil {
		return err
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return errors.New("buildkite-agent oidc request-token printed no token")
	}
	// nsc takes the OIDC token only as a flag (exchange-oidc-token has
	// --token and --tenant_id, no file, stdin or variable): it is visible in
	// the process list for the exchange's duration. It is bound to
	// Namespace's audience, lives two minutes, and with the shared tenant
	// token a host runs one exchange per token lifetime, not one per job.
	if _, err := runCommand(ctx, env, n.NSC, "auth", "exchange-oidc-token", "--token", token, "--tenant_id", n.TenantID); err != nil {
		return errors.New(strings.ReplaceAll(err.Error(), token, "<token>"))
	}
	return nil
}

// HostTenantTokens are the Namespace tenant tokens the host's jobs share,
// under the state dir.
func HostTenantTokens(stateDir string) TenantTokens {
	return TenantTokens{Dir: filepath.Join(stateDir, "namespace")}
}

// runCommand runs a command and returns its stdout; a failure names the
// command (without its arguments, which may hold a token) and the reason it
// gave (proc.Reason: nsc's Failed: block, else its last stderr line).
func runCommand(ctx context.Context, env []string, name string, args ...string) (string, error) {
	out, errb, err := proc.Run(ctx, env, nil, name, args...)
	if err == nil {
		return string(out), nil
	}
	what := filepath.Base(name) + " " + strings.Join(subcommand(args), " ")
	if ctx.Err() != nil {
		return "", fmt.Errorf("%s: no answer in time", what)
	}
	msg := proc.Reason(string(errb))
	if msg == "" {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return "", fmt.Errorf("%s: %s", what, strings.TrimPrefix(msg, "Error: "))
}

// subcommand is the leading words of args, up to the first flag.
func subcommand(args []string) []string {
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			return args[:i]
		}
	}
	return args
}

// withEnv returns base with the variables of set replaced (an empty value
// removes the variable).
func withEnv(base []string, set map[string]string) []string {
	var out []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range set {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}
