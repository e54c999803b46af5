package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
)

// How the shared ECR token cache keeps one AWS identity's token from being
// served to another.
//
// The light helper cannot load the AWS SDK (it costs milliseconds on every
// call), so it cannot know which identity the default credential chain would
// resolve to. Instead every cache entry is keyed by an identity hint: a hash
// of everything that decides what the chain resolves — the uid, HOME, the
// AWS_* variables naming credentials, a profile, a role, a web identity
// token file or a container credentials endpoint, the endpoint overrides,
// and the size and modification time of the shared config and credentials
// files. Two callers with the same hint resolve the same identity, save for
// a change the hint cannot see (an instance role swapped under a running
// host). For that, the heavy side (dockhand-cloud ecr-token) reports the
// identity it actually got, without calling STS: the SHA-256 of the access
// key id of the resolved credentials. The cache records that key id per
// hint and per token; a fetch that reports a different key id for a hint
// drops every token cached under it, and a token is only served while its
// key id is the one last seen for its hint.
//
// No secret goes into the hint: the secret access key, session token and
// container authorization token are not read; the access key id is hashed.

// identityVars are the variables that select the credentials the AWS SDK's
// default chain resolves, or where it sends the ECR calls.
var identityVars = []string{
	"HOME",
	"AWS_ACCESS_KEY_ID",
	"AWS_PROFILE",
	"AWS_DEFAULT_PROFILE",
	"AWS_CONFIG_FILE",
	"AWS_SHARED_CREDENTIALS_FILE",
	"AWS_ROLE_ARN",
	"AWS_ROLE_SESSION_NAME",
	"AWS_WEB_IDENTITY_TOKEN_FILE",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_DISABLED",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AWS_ENDPOINT_URL",
	"AWS_ENDPOINT_URL_ECR",
	"AWS_ENDPOINT_URL_ECR_PUBLIC",
	"AWS_USE_FIPS_ENDPOINT",
	"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
}

// FileStamp is what the hint takes from a file: its size and modification
// time, or ok=false when it is missing.
type FileStamp func(path string) (size int64, mtime time.Time, ok bool)

// IdentityHint returns the cache key part for the AWS identity the
// environment e would resolve for user uid. stamp reads the shared config
// and credentials files' metadata (never their contents).
func IdentityHint(e *agentenv.Environment, uid int, stamp FileStamp) string {
	var b strings.Builder
	fmt.Fprintf(&b, "uid=%d\n", uid)
	get := func(name string) string {
		v, _ := e.Get(name)
		return v
	}
	for _, name := range identityVars {
		if v := get(name); v != "" {
			fmt.Fprintf(&b, "%s=%s\n", name, v)
		}
	}
	home := get("HOME")
	for _, f := range []struct{ varName, def string }{
		{"AWS_CONFIG_FILE", filepath.Join(home, ".aws", "config")},
		{"AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, ".aws", "credentials")},
	} {
		path := get(f.varName)
		if path == "" {
			if home == "" {
				continue
			}
			path = f.def
		}
		if size, mtime, ok := stamp(path); ok {
			fmt.Fprintf(&b, "file %s=%d@%d\n", path, size, mtime.UnixNano())
		}
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:16])
}

// KeyID is how an access key id is recorded in the cache: its SHA-256, hex.
func KeyID(accessKeyID string) string {
	sum := sha256.Sum256([]byte(accessKeyID))
	return hex.EncodeToString(sum[:])
}
