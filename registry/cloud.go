package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// ECRTokenCommand is the dockhand-cloud subcommand that fetches one ECR
// token with the AWS SDK: `dockhand-cloud ecr-token --registry HOST`. HOST
// is not secret; the AWS credentials reach it through its environment, and
// the token comes back as an ECRTokenReply on its stdout, a pipe.
const ECRTokenCommand = "ecr-token"

// ECRTokenReply is ecr-token's answer, JSON on stdout.
type ECRTokenReply struct {
	Username      string    `json:"username"`
	Secret        string    `json:"secret"`
	ProxyEndpoint string    `json:"proxy_endpoint,omitempty"`
	ExpiresAt     time.Time `json:"expires_at"`
	// KeyID is KeyID(access key id of the credentials the SDK resolved).
	KeyID string `json:"key_id"`
}

// Check reports a reply that cannot be served.
func (r ECRTokenReply) Check() error {
	switch {
	case r.Username == "" || r.Secret == "":
		return errors.New("ecr-token returned no username or secret")
	case r.ExpiresAt.IsZero():
		return errors.New("ecr-token returned no expiry")
	case r.KeyID == "":
		return errors.New("ecr-token returned no key id")
	}
	return nil
}

// FetchECR fetches a token for an ECR registry.
type FetchECR func(ctx context.Context, reg hosts.Registry) (ECRTokenReply, error)

// ExecECRToken returns a FetchECR that runs `cloud ecr-token` with env.
func ExecECRToken(cloud string, env []string) FetchECR {
	return func(ctx context.Context, reg hosts.Registry) (ECRTokenReply, error) {
		cmd := exec.CommandContext(ctx, cloud, ECRTokenCommand, "--registry", reg.Host)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = time.Second
		if err := cmd.Run(); err != nil {
			if msg := lastLine(stderr.String()); msg != "" {
				return ECRTokenReply{}, errors.New(msg)
			}
			return ECRTokenReply{}, fmt.Errorf("running %s %s: %w", cloud, ECRTokenCommand, err)
		}
		var reply ECRTokenReply
		if err := json.Unmarshal(stdout.Bytes(), &reply); err != nil {
			return ECRTokenReply{}, fmt.Errorf("reading the answer of %s %s: %w", cloud, ECRTokenCommand, err)
		}
		return reply, reply.Check()
	}
}

// lastLine returns the last non-empty line of s, at most 300 bytes.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	if len(line) > 300 {
		line = line[:300] + "…"
	}
	return line
}
