package certs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// File names in a certificate directory. Clients are NAME.pem and
// NAME-key.pem.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ServerFile    = "server.pem"
	ServerKeyFile = "server-key.pem"
)

// Modes: keys are private to their owner; certificates are public.
const (
	keyMode  os.FileMode = 0o600
	certMode os.FileMode = 0o644
)

// WriteOptions say what WriteDir makes.
type WriteOptions struct {
	Dir        string
	ServerSANs []string // names and addresses for server.pem; none: no server certificate
	Clients    []string // client certificate names (NAME.pem, NAME-key.pem)
	Validity   time.Duration
	Force      bool // replace existing leaf files
	Now        time.Time
}

var clientName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// WriteDir writes a fleet's mTLS files into o.Dir (created 0700): the CA
// (reused when ca.pem and ca-key.pem are already there, so more clients can
// be issued later), the server certificate and the client certificates.
// Keys are 0600, certificates 0644, every file written atomically. It
// returns the files it wrote.
func WriteDir(o WriteOptions) ([]string, error) {
	if len(o.ServerSANs) == 0 && len(o.Clients) == 0 {
		return nil, errors.New("nothing to issue: give server SANs, client names, or both")
	}
	for i, c := range o.Clients {
		if !clientName.MatchString(c) || c == "ca" || c == "ca-key" || c == "server" || c == "server-key" {
			return nil, fmt.Errorf("client name %q must be lower-case letters, digits, '.', '_' or '-', and not ca or server", c)
		}
		if slices.Contains(o.Clients[:i], c) {
			return nil, fmt.Errorf("client name %q is given twice", c)
		}
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.Dir, err)
	}
	ca, written, err := loadOrCreateCA(o)
	if err != nil {
		return written, err
	}
	type leafFiles struct {
		req       Request
		cert, key string
	}
	var leaves []leafFiles
	if len(o.ServerSANs) > 0 {
		leaves = append(leaves, leafFiles{Request{CommonName: "buildkitd", Usage: Server, SANs: o.ServerSANs, Validity: o.Validity},
			ServerFile, ServerKeyFile})
	}
	for _, c := range o.Clients {
		leaves = append(leaves, leafFiles{Request{CommonName: c, Usage: Client, Validity: o.Validity}, c + ".pem", c + "-key.pem"})
	}
	if !o.Force {
		for _, l := range leaves {
			for _, f := range []string{l.cert, l.key} {
				if _, err := os.Lstat(filepath.Join(o.Dir, f)); err == nil {
					return written, fmt.Errorf("%s already exists (use --force to replace it)", filepath.Join(o.Dir, f))
				}
			}
		}
	}
	for _, l := range leaves {
		leaf, err := ca.Issue(l.req, o.Now)
		if err != nil {
			return written, err
		}
		// The key first: a certificate is never left without its key.
		if err := safefile.WriteMode(filepath.Join(o.Dir, l.key), leaf.KeyPEM, keyMode); err != nil {
			return written, err
		}
		written = append(written, filepath.Join(o.Dir, l.key))
		if err := safefile.WriteMode(filepath.Join(o.Dir, l.cert), leaf.CertPEM, certMode); err != nil {
			return written, err
		}
		written = append(written, filepath.Join(o.Dir, l.cert))
	}
	return written, nil
}

func loadOrCreateCA(o WriteOptions) (*Authority, []string, error) {
	certPath, keyPath := filepath.Join(o.Dir, CAFile), filepath.Join(o.Dir, CAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		ca, err := LoadCA(certPEM, keyPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("%s, %s: %w", certPath, keyPath, err)
		}
		return ca, nil, nil
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
	case certErr != nil && !errors.Is(certErr, os.ErrNotExist):
		return nil, nil, fmt.Errorf("reading the CA: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, os.ErrNotExist):
		return nil, nil, fmt.Errorf("reading the CA key: %w", keyErr)
	default:
		return nil, nil, fmt.Errorf("%s and %s must both exist or both be absent", certPath, keyPath)
	}
	validity := 10 * 365 * 24 * time.Hour
	if o.Validity > validity {
		validity = o.Validity
	}
	ca, err := NewCA("dockhand buildkit CA", validity, o.Now)
	if err != nil {
		return nil, nil, err
	}
	if err := safefile.WriteMode(keyPath, ca.KeyPEM, keyMode); err != nil {
		return nil, nil, err
	}
	if err := safefile.WriteMode(certPath, ca.CertPEM, certMode); err != nil {
		return nil, []string{keyPath}, err
	}
	return ca, []string{keyPath, certPath}, nil
}
