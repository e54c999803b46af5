package buildx

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/dockhand-ci/dockhand/internal/filelock"
	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// buildx keys a build context's upload by the context directory's base name
// and a node identity it keeps in its config dir (NodeIDFile). BuildKit keeps
// the last upload under that key and sends only the files whose metadata
// (size, mtime, mode) changed. A fresh config dir per job means a fresh
// identity, so every job uploads its whole context again.
//
// dockhand gives every job the identity of its scope instead: the pipeline,
// the checkout directory (one per agent on a host) and, for a pull request
// from a fork, the fork. It is an HMAC of the scope under a random key kept
// per host (NodeKeyFile), so it is stable on the host, unguessable from
// elsewhere (another host on the same builder cannot aim at this host's
// uploads) and never shared by two pipelines: an upload is only ever diffed
// against one made from the same pipeline's files.

// NodeIDFile is buildx's node identity, in its config dir ($DOCKER_CONFIG/buildx).
const NodeIDFile = ".buildNodeID"

// NodeKeyDir is the state dir's subdirectory holding the host's node key.
const NodeKeyDir = "buildx-node"

// NodeScope is what one buildx node identity is shared by.
type NodeScope struct {
	Pipeline string // "id:<BUILDKITE_PIPELINE_ID>", else "slug:<org>/<pipeline>"
	Checkout string // the job's checkout dir (CheckoutPath)
	Fork     string // the normalised fork repository of a pull request from a fork
}

// NodeScopeFromEnv is the job's scope from its BUILDKITE_* variables as the
// agent gave them, and fork, the normalised repository of a pull request
// from a fork ("" for any other job; the cache-key policy decides it). ok is
// false when the job names no pipeline: such a job keeps buildx's own
// per-job identity.
func NodeScopeFromEnv(lookup func(string) string, fork string) (s NodeScope, ok bool) {
	if id := strings.TrimSpace(lookup("BUILDKITE_PIPELINE_ID")); id != "" {
		s.Pipeline = "id:" + id
	} else if slug := strings.TrimSpace(lookup("BUILDKITE_PIPELINE_SLUG")); slug != "" {
		s.Pipeline = "slug:" + strings.TrimSpace(lookup("BUILDKITE_ORGANIZATION_SLUG")) + "/" + slug
	} else {
		return s, false
	}
	s.Checkout, s.Fork = CheckoutPath(lookup), fork
	return s, true
}

// CheckoutPath is the job's checkout dir as buildkite-agent's bootstrap
// will set it: BUILDKITE_BUILD_CHECKOUT_PATH when the job has one, else
// BUILD_PATH/AGENT_NAME/ORG/PIPELINE with every character of the agent name
// that is not an ASCII letter or digit made "-". "" when neither can be had.
func CheckoutPath(lookup func(string) string) string {
	if c := strings.TrimSpace(lookup("BUILDKITE_BUILD_CHECKOUT_PATH")); c != "" {
		return filepath.Clean(c)
	}
	build := strings.TrimSpace(lookup("BUILDKITE_BUILD_PATH"))
	if build == "" {
		return ""
	}
	agent := strings.Map(func(r rune) rune {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)) { // [[:alnum:]] is ASCII
			return r
		}
		return '-'
	}, lookup("BUILDKITE_AGENT_NAME"))
	return filepath.Join(build, agent, lookup("BUILDKITE_ORGANIZATION_SLUG"), lookup("BUILDKITE_PIPELINE_SLUG"))
}

// NodeID is the buildx node identity of scope s under the host's key: 32 hex
// digits (buildx makes 16 of its own; any string is accepted).
func NodeID(hostKey []byte, s NodeScope) string {
	m := hmac.New(sha256.New, hostKey)
	// Length-prefixed fields: no two scopes give the same input.
	for _, f := range []string{s.Pipeline, s.Checkout, s.Fork} {
		fmt.Fprintf(m, "%d:%s\n", len(f), f)
	}
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// nodeKeyLen is the size of the host's node key in bytes.
const nodeKeyLen = 32

// HostNodeKey returns the host's node key, STATE/buildx-node/key (0600),
// creating it on first use: under a lock, written atomically, so the host's
// concurrent first jobs agree on one key. A key file of the wrong size is
// replaced (the host's uploads start over once). ctx ends the wait for the
// lock.
func HostNodeKey(ctx context.Context, stateDir string) ([]byte, error) {
	dir := filepath.Join(stateDir, NodeKeyDir)
	path := filepath.Join(dir, "key")
	if k, err := readNodeKey(path); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	release, err := filelock.Lock(ctx, filepath.Join(dir, ".lock"), 0)
	if err != nil {
		return nil, err
	}
	defer release()
	if k, err := readNodeKey(path); err == nil {
		return k, nil // another job made it meanwhile
	}
	k := make([]byte, nodeKeyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("making the host's buildx node key: %w", err)
	}
	if err := safefile.Write(path, []byte(hex.EncodeToString(k)+"\n")); err != nil {
		return nil, err
	}
	return k, nil
}

// readNodeKey reads a key file HostNodeKey wrote.
func readNodeKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(k) != nodeKeyLen {
		return nil, errors.New("malformed node key")
	}
	return k, nil
}

// SeedNodeID writes the job's node identity into its buildx config dir.
func SeedNodeID(buildxDir, id string) error {
	return safefile.Write(filepath.Join(buildxDir, NodeIDFile), []byte(id))
}
