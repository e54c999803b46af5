package namespace

import (
	"context"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/internal/jsonfile"
	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// setupMargin is how long before its client certificate (or the tenant
// token it was set up with) expires a shared builder setup is done anew, so
// that no build starts with a certificate about to lapse.
const setupMargin = 10 * time.Minute

// Setups shares `nsc docker buildx setup` between a host's jobs:
// real nsc makes 2 + one-per-platform API calls and fetches a new client
// certificate on every run, so a job reuses the builder another job set up
// while its certificate is valid. What is shared is nsc's non-secret
// output, the buildx instance it wrote (endpoints, file paths), in
// DIR/setup-TENANT.json; nsc's state (the client certificate and key, the
// servers' CAs) stays in a 0700 dir under DIR, its files 0600, one dir per
// setup so a new setup never rewrites files a running build reads.
type Setups struct {
	Dir string
	Now func() time.Time
}

// HostSetups are the Namespace builder setups the host's jobs
// share, under the state dir.
func HostSetups(stateDir string) Setups {
	return Setups{Dir: filepath.Join(stateDir, "namespace")}
}

func (s Setups) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// sharedSetup is one shared setup: what nsc wrote, where its state is, and
// until when it may be used.
type sharedSetup struct {
	Instance json.RawMessage `json:"instance"` // the buildx instance nsc wrote (no secret: paths and endpoints)
	State    string          `json:"state"`    // the --state dir nsc wrote its certificates into
	Expires  time.Time       `json:"expires"`  // the client certificate's or the tenant token's end, whichever is first
}

// key names a tenant's setup: with or without default-load, which nsc
// writes into the instance.
func setupKey(tenant string, defaultLoad bool) string {
	key := "setup-" + safeName(tenant)
	if defaultLoad {
		key += "-load"
	}
	return key
}

func (s Setups) file(key string) string { return filepath.Join(s.Dir, key+".json") }

// Lock takes the lock of a tenant's setup, waiting until deadline at most
// and no longer than ctx lasts.
func (s Setups) Lock(ctx context.Context, tenant string, defaultLoad bool, deadline time.Time) (func(), error) {
	return jsonfile.LockUntil(ctx, s.file(setupKey(tenant, defaultLoad))+".lock", deadline)
}

// Get returns the shared setup's instance file (to be written into a job's
// docker config) and its expiry, when it is valid for longer than the
// margin and its state is still there.
func (s Setups) Get(tenant string, defaultLoad bool) ([]byte, time.Time, bool) {
	var st sharedSetup
	data, err := os.ReadFile(s.file(setupKey(tenant, defaultLoad)))
	if err != nil || json.Unmarshal(data, &st) != nil || st.Expires.Sub(s.now()) < setupMargin {
		return nil, time.Time{}, false
	}
	if fi, err := os.Stat(st.State); err != nil || !fi.IsDir() {
		return nil, time.Time{}, false
	}
	return st.Instance, st.Expires, true
}

// NewState makes the state dir for a new setup (0700).
func (s Setups) NewState(tenant string, defaultLoad bool) (string, error) {
	dir := filepath.Join(s.Dir, "buildx", fmt.Sprintf("%s-%d", setupKey(tenant, defaultLoad), s.now().UnixNano()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// Put shares a setup nsc just made, valid until expires, and removes the
// state of the tenant's setups that have expired (no job may still use
// them).
func (s Setups) Put(tenant string, defaultLoad bool, instance []byte, state string, expires time.Time) error {
	data, err := json.Marshal(sharedSetup{Instance: instance, State: state, Expires: expires})
	if err != nil {
		return err
	}
	if err := safefile.Write(s.file(setupKey(tenant, defaultLoad)), data); err != nil {
		return err
	}
	s.sweep(setupKey(tenant, defaultLoad), state)
	return nil
}

// Drop forgets a shared setup (its builder did not answer): the next job
// sets one up anew.
func (s Setups) Drop(tenant string, defaultLoad bool) {
	_ = os.Remove(s.file(setupKey(tenant, defaultLoad)))
}

// sweep removes the state dirs of key's earlier setups made more than a day
// ago: certificates that old have been replaced, and a job lasts less.
func (s Setups) sweep(key, keep string) {
	dirs, _ := filepath.Glob(filepath.Join(s.Dir, "buildx", key+"-*"))
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && d != keep && s.now().Sub(fi.ModTime()) > 24*time.Hour {
			_ = os.RemoveAll(d)
		}
	}
}

// safeName keeps the letters, digits, '-' and '_' of a tenant id, for a
// file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// certNotAfter reads the end of validity of the first certificate in a PEM
// file (nsc writes the client certificate and its key into one): the
// TBSCertificate's validity, read with encoding/asn1 (crypto/x509 is more
// than the job path needs).
func certNotAfter(pemData []byte) (time.Time, error) {
	for {
		var block *pem.Block
		block, pemData = pem.Decode(pemData)
		if block == nil {
			return time.Time{}, errors.New("no certificate in the PEM file")
		}
		if block.Type == "CERTIFICATE" {
			return notAfter(block.Bytes)
		}
	}
}

func notAfter(der []byte) (time.Time, error) {
	bad := errors.New("not an X.509 certificate")
	var cert, tbs asn1.RawValue
	if _, err := asn1.Unmarshal(der, &cert); err != nil || !cert.IsCompound {
		return time.Time{}, bad
	}
	if _, err := asn1.Unmarshal(cert.Bytes, &tbs); err != nil || !tbs.IsCompound {
		return time.Time{}, bad
	}
	// TBSCertificate: [0] version (optional), serial, signature, issuer,
	// validity.
	rest := tbs.Bytes
	for i := 0; ; i++ {
		var field asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &field); err != nil {
			return time.Time{}, bad
		}
		if i == 0 && field.Class == asn1.ClassContextSpecific {
			i-- // the version: the fields counted start after it
			continue
		}
		if i < 3 {
			continue
		}
		var validity struct{ NotBefore, NotAfter time.Time }
		if _, err := asn1.Unmarshal(field.FullBytes, &validity); err != nil {
			return time.Time{}, bad
		}
		return validity.NotAfter, nil
	}
}
