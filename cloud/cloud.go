// Package cloud is the one contract between dockhand and dockhand-cloud:
// the command names, the request and reply of each, and how they travel.
//
// dockhand runs `dockhand-cloud COMMAND` as a child (Run): the request is
// JSON on the child's stdin, the reply JSON on its stdout, and a failure
// is the child's exit status with one line on its stderr, which becomes
// the error (Error). The child is bounded by the caller's context and
// proc.WaitDelay (proc.Run). dockhand-cloud answers with Serve. Two commands are not
// request and reply but hand the whole process over (Exec): cached-image
// and certs, whose output, signals and exit status are the user's.
//
// Every request and reply is here: the probes' (probe.go), the build
// history's (history.go), EC2 fleet discovery's (fleet.go) and the ECR
// ones (this file).
package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dockhand-ci/dockhand/internal/proc"
)

// Binary is dockhand-cloud's executable name; it is installed next to
// dockhand.
const Binary = "dockhand-cloud"

// Path is dockhand-cloud next to self, the dockhand executable.
func Path(self string) string { return filepath.Join(filepath.Dir(self), Binary) }

// The commands of dockhand-cloud.
const (
	Probe        = "probe"          // ProbeRequest -> ProbeResponse
	FleetEC2     = "fleet-ec2"      // EC2Request -> EC2Reply
	History      = "history"        // HistoryRequest -> HistoryResponse
	ECRToken     = "ecr-token"      // ECRTokenRequest -> ECRTokenReply
	ECRCacheRepo = "ecr-cache-repo" // ECRCacheRepoRequest -> ECRCacheRepoReply
	CachedImage  = "cached-image"   // Exec: dockhand cached-image's arguments and --tag
	Certs        = "certs"          // Exec: dockhand certs's arguments
	Version      = "version"        // prints the version
)

// ECRTokenRequest asks for one ECR or ECR Public token. The AWS
// credentials reach dockhand-cloud through its environment, never here.
type ECRTokenRequest struct {
	Registry string        `json:"registry"`             // ACCOUNT.dkr.ecr.REGION.amazonaws.com or public.ecr.aws
	Timeout  time.Duration `json:"timeout_ns,omitempty"` // bound of the whole fetch, retries included (0: 30s)
}

// ECRTokenReply is the token, on a pipe to the credential helper.
type ECRTokenReply struct {
	Username      string    `json:"username"`
	Secret        string    `json:"secret"`
	ProxyEndpoint string    `json:"proxy_endpoint,omitempty"`
	ExpiresAt     time.Time `json:"expires_at"`
	// KeyID is registry.KeyID(access key id of the credentials the SDK
	// resolved).
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

// ECRCacheRepoRequest asks for the registry cache backend's ECR repository,
// created if missing, with its lifecycle policy.
type ECRCacheRepoRequest struct {
	Repository string `json:"repository"` // ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME
	MaxAgeDays int    `json:"max_age_days"`
}

// ECRCacheRepoReply says whether the repository was created, and which IAM
// actions the cache needs were denied.
type ECRCacheRepoReply struct {
	Created bool     `json:"created"`
	Missing []string `json:"missing,omitempty"` // ECRCreateRepository: there is no repository
}

// The IAM actions the ECR cache repository needs beyond pushing and
// pulling, as ECRCacheRepoReply.Missing names them.
const (
	ECRCreateRepository   = "ecr:CreateRepository"
	ECRPutLifecyclePolicy = "ecr:PutLifecyclePolicy"
)

// Error is how a command failed, in one shape on every path.
type Error struct {
	Command string // the command, "dockhand-cloud probe"
	Path    string // the executable run
	Err     error  // what exec or the decoder said
	// Stderr is the last line the child printed on stderr (at most 300
	// bytes): dockhand-cloud's own account of the failure, naming its
	// command.
	Stderr string
}

func (e *Error) Error() string {
	switch {
	case errors.Is(e.Err, exec.ErrNotFound) || errors.Is(e.Err, os.ErrNotExist):
		return fmt.Sprintf("%s not found (it is installed next to dockhand)", e.Path)
	case e.Stderr != "":
		return e.Stderr
	}
	return fmt.Sprintf("%s: %v", e.Command, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs `cloud COMMAND` with env, req as JSON on its stdin, and decodes
// the JSON on its stdout into resp. The child ends with ctx, and is not
// waited for more than proc.WaitDelay beyond it. Any failure is an *Error.
func Run(ctx context.Context, cloud string, env []string, command string, req, resp any) error {
	name := Binary + " " + command
	in, err := json.Marshal(req)
	if err != nil {
		return &Error{Command: name, Path: cloud, Err: fmt.Errorf("encoding the request: %w", err)}
	}
	stdout, stderr, err := proc.Run(ctx, env, in, cloud, command)
	if err != nil {
		return &Error{Command: name, Path: cloud, Err: err, Stderr: proc.LastLine(string(stderr))}
	}
	if err := json.Unmarshal(stdout, resp); err != nil {
		return &Error{Command: name, Path: cloud, Err: fmt.Errorf("bad answer: %w", err)}
	}
	return nil
}

// Serve answers one request on dockhand-cloud's side: it decodes Req from
// in, and encodes handle's reply on out. handle's error is returned for
// the caller to print as the one stderr line.
func Serve[Req, Resp any](in io.Reader, out io.Writer, handle func(Req) (Resp, error)) error {
	var req Req
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fmt.Errorf("reading the request on stdin: %w", err)
	}
	resp, err := handle(req)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(resp)
}

// Exec replaces this process with `cloud COMMAND ARGS...`, so its output,
// signals and exit status are the command's. It returns only on failure.
func Exec(cloud, command string, args, env []string) error {
	argv := append([]string{cloud, command}, args...)
	if err := syscall.Exec(cloud, argv, env); err != nil {
		return fmt.Errorf("running %s: %w", cloud, err)
	}
	return nil
}
