package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/dockhand-ci/dockhand/internal/filelock"
	"github.com/dockhand-ci/dockhand/internal/jsonfile"
	"github.com/dockhand-ci/dockhand/internal/proc"
)

// The sources other than ECR: docker-credential-nsc, Buildkite Packages
// OIDC tokens and static files.

// NSCHelper is Namespace's credential helper, found on PATH.
const NSCHelper = "docker-credential-nsc"

// NSCTokenFileVar is where nsc and docker-credential-nsc read a tenant token
// before their own config dir.
const NSCTokenFileVar = "NSC_TOKEN_FILE"

// nsc delegates to docker-credential-nsc, speaking the same protocol.
func (h *Helper) nsc(ctx context.Context, serverURL string) (Credential, error) {
	path, _ := h.o.Env.Get("PATH")
	bin, err := proc.LookPath(NSCHelper, path)
	if err != nil {
		return Credential{}, err
	}
	env := h.o.Env.ToSlice()
	if _, ok := h.o.Env.Get(NSCTokenFileVar); !ok && h.o.Settings.NSCTokenFile != "" {
		env = append(env, NSCTokenFileVar+"="+h.o.Settings.NSCTokenFile)
	}
	stdout, stderr, runErr := proc.Run(ctx, env, []byte(serverURL), bin, "get")
	out := strings.TrimSpace(string(stdout))
	// The real helper says "not found" on stderr, in a Failed: block.
	msg := proc.Reason(string(stderr))
	if credentials.IsCredentialsMissingServerURLMessage(out) || isNotFoundMessage(out) || isNotFoundMessage(msg) {
		return Credential{}, fmt.Errorf("%w: %s has none", errNoCredentials, NSCHelper)
	}
	if runErr != nil {
		if msg == "" {
			msg = proc.LastLine(out)
		}
		return Credential{}, fmt.Errorf("%s get: %v: %s", bin, runErr, msg)
	}
	var c credentials.Credentials
	if err := json.Unmarshal(stdout, &c); err != nil || c.Secret == "" {
		return Credential{}, fmt.Errorf("%s get: unreadable answer", bin)
	}
	return Credential{Username: c.Username, Secret: c.Secret, Detail: bin}, nil
}

func isNotFoundMessage(s string) bool {
	return strings.HasSuffix(s, "credentials not found in native keychain")
}

// PackagesUser is the username Buildkite Package Registries take with an
// OIDC token.
const PackagesUser = "buildkite"

// oidcCacheFile holds the job's OIDC tokens by audience (0600, in the job
// dir, gone with the job).
const oidcCacheFile = "oidc-tokens.json"

// oidcMinRemaining is how long a cached OIDC token must still be valid to
// be served again.
const oidcMinRemaining = 2 * time.Minute

type oidcToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// packages gets an agent OIDC token for a Buildkite Package Registry:
// `buildkite-agent oidc request-token --audience AUDIENCE`, which only a
// job's environment can do. The token is kept in the job dir until two
// minutes before it expires.
func (h *Helper) packages(ctx context.Context, audience string) (Credential, error) {
	if h.o.JobDir == "" {
		return Credential{}, errors.New("an agent OIDC token can only be requested inside a Buildkite job")
	}
	cachePath := filepath.Join(h.o.JobDir, oidcCacheFile)
	unlock, err := filelock.Lock(ctx, cachePath+".lock", h.o.LockWait)
	if err != nil {
		return Credential{}, err
	}
	defer unlock()
	cached, _ := jsonfile.Read[map[string]oidcToken](cachePath) // unreadable: start afresh
	if cached == nil {
		cached = map[string]oidcToken{}
	}
	detail := "agent OIDC token for " + audience
	if t, ok := cached[audience]; ok && t.ExpiresAt.Sub(h.o.Now()) > oidcMinRemaining {
		return Credential{Username: PackagesUser, Secret: t.Token, Detail: detail + " (cached in the job)", ExpiresAt: t.ExpiresAt}, nil
	}
	agent, err := proc.FindAgent(h.o.Env)
	if err != nil {
		return Credential{}, err
	}
	stdout, stderr, err := proc.Run(ctx, h.o.Env.ToSlice(), nil, agent, "oidc", "request-token", "--audience", audience)
	if err != nil {
		return Credential{}, fmt.Errorf("buildkite-agent oidc request-token: %v: %s", err, proc.LastLine(string(stderr)))
	}
	token := strings.TrimSpace(string(stdout))
	if token == "" || strings.ContainsAny(token, " \n") {
		return Credential{}, errors.New("buildkite-agent oidc request-token printed no token")
	}
	exp := jwtExpiry(token)
	if !exp.IsZero() {
		cached[audience] = oidcToken{Token: token, ExpiresAt: exp}
		if err := jsonfile.Write(cachePath, cached); err != nil {
			h.warnf("%v", err)
		}
	}
	return Credential{Username: PackagesUser, Secret: token, Detail: detail, ExpiresAt: exp}, nil
}

// jwtExpiry reads the exp claim of a JWT without checking it (the token
// is ours to pass on, not to trust); zero when there is none.
func jwtExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}
	}
	n, err := claims.Exp.Int64()
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// staticCredentials is the JSON a registry.static file holds.
type staticCredentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// readStatic reads a registry.static file. It must not be readable by group
// or others, like an ssh key.
func readStatic(file string) (Credential, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return Credential{}, fmt.Errorf("registry.static: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return Credential{}, fmt.Errorf("registry.static: %s is readable by others (mode %04o); chmod 600 it", file, fi.Mode().Perm())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return Credential{}, fmt.Errorf("registry.static: %w", err)
	}
	var s staticCredentials
	if err := json.Unmarshal(data, &s); err != nil {
		return Credential{}, fmt.Errorf("registry.static: %s is not JSON {\"username\": ..., \"password\": ...}", file)
	}
	if s.Username == "" || s.Password == "" {
		return Credential{}, fmt.Errorf("registry.static: %s has no username or no password", file)
	}
	return Credential{Username: s.Username, Secret: s.Password, Detail: "file " + file}, nil
}
