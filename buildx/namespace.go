package buildx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// NamespaceAudience is the OIDC audience Namespace federates Buildkite
// tokens for.
const NamespaceAudience = "federation.namespaceapis.com"

// NamespaceTokenVar is where docker-credential-nsc (nscr.io credentials)
// finds the job's Namespace token.
const NamespaceTokenVar = "NSC_TOKEN_FILE"

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
	Timeout      time.Duration
	// DefaultLoad: the host has a docker engine, so builds with no output
	// load their image into it, as they would on the engine's own builder
	// (each Namespace node builds one platform: see Loadable).
	DefaultLoad bool
}

// nscDir holds nsc's files for the job.
func (n Namespace) nscDir() string { return filepath.Join(n.JobDir, "nsc") }

// TokenFile is where nsc stores the job's tenant token.
func (n Namespace) TokenFile() string {
	return filepath.Join(n.nscDir(), "config", "ns", "token.json")
}

// SetUp authenticates and sets the builder up. It returns the builder nsc
// wrote and the variables the job needs (NSC_TOKEN_FILE).
func (n Namespace) SetUp(ctx context.Context) (Builder, map[string]string, error) {
	if n.Timeout <= 0 {
		n.Timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()
	config, state := filepath.Join(n.nscDir(), "config"), filepath.Join(n.nscDir(), "state")
	for _, d := range []string{n.nscDir(), config, state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return Builder{}, nil, err
		}
	}
	env := withEnv(n.Env, map[string]string{"XDG_CONFIG_HOME": config, "DOCKER_CONFIG": n.DockerConfig, "BUILDX_CONFIG": ""})

	switch n.Auth {
	case "cognito":
		if _, err := runCommand(ctx, env, n.NSC, "auth", "exchange-aws-cognito-token",
			"--aws_region", n.AWSRegion, "--identity_pool", n.IdentityPool, "--tenant_id", n.TenantID); err != nil {
			return Builder{}, nil, err
		}
	default:
		if n.Agent == "" {
			return Builder{}, nil, errors.New("buildkite-agent not found (BUILDKITE_BIN_PATH or PATH), needed for the OIDC token")
		}
		// The token comes to dockhand's memory, never to the job log, so the
		// agent's log redaction (which needs the Job API, not up before the
		// real bootstrap runs) is not needed; the variable is the way every
		// agent version accepts to skip it.
		agentEnv := withEnv(n.Env, map[string]string{"BUILDKITE_AGENT_OIDC_REQUEST_TOKEN_SKIP_TOKEN_REDACTION": "true"})
		token, err := runCommand(ctx, agentEnv, n.Agent, "oidc", "request-token", "--audience", NamespaceAudience, "--lifetime", "120")
		if err != nil {
			return Builder{}, nil, err
		}
		token = strings.TrimSpace(token)
		if token == "" {
			return Builder{}, nil, errors.New("buildkite-agent oidc request-token printed no token")
		}
		// nsc takes the token only as a flag: it is visible in the process
		// list for the exchange's duration. It is bound to Namespace's
		// audience and lives two minutes.
		if _, err := runCommand(ctx, env, n.NSC, "auth", "exchange-oidc-token", "--token", token, "--tenant_id", n.TenantID); err != nil {
			return Builder{}, nil, errors.New(strings.ReplaceAll(err.Error(), token, "<token>"))
		}
	}
	setup := []string{"docker", "buildx", "setup", "--name", NamespaceName, "--state", state, "--background", "--use"}
	if n.DefaultLoad {
		setup = append(setup, "--default_load")
	}
	if _, err := runCommand(ctx, env, n.NSC, setup...); err != nil {
		return Builder{}, nil, err
	}
	b, err := ReadInstance(n.DockerConfig, KindNamespace, NamespaceName)
	if err != nil {
		return Builder{}, nil, fmt.Errorf("nsc docker buildx setup wrote no builder: %w", err)
	}
	return b, map[string]string{NamespaceTokenVar: n.TokenFile()}, nil
}

// run runs a command and returns its stdout; a failure names the command
// (without its arguments, which may hold a token) and its last stderr line.
func runCommand(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err == nil {
		return out.String(), nil
	}
	what := filepath.Base(name) + " " + strings.Join(subcommand(args), " ")
	if ctx.Err() != nil {
		return "", fmt.Errorf("%s: no answer in time", what)
	}
	msg := strings.TrimSpace(errb.String())
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = strings.TrimSpace(msg[i+1:])
	}
	if msg == "" {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	msg = strings.TrimPrefix(msg, "Error: ") // nsc's (cobra's) prefix
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return "", fmt.Errorf("%s: %s", what, msg)
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

// LookPath finds an executable in a PATH value (the job's, not dockhand's);
// "" when there is none.
func LookPath(name, path string) string {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
