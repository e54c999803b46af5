// Package registry serves registry credentials to docker: the
// docker-credential-dockhand helper, its job-scoped store of `docker login`s,
// routing by host (registry/hosts) to ECR and ECR Public tokens (fetched by
// dockhand-cloud with registry/ecr, cached for the whole host), nscr.io
// (docker-credential-nsc), Buildkite Packages (agent OIDC tokens) and static
// credential files, and the redaction of what it serves from the job's log.
// See docs/credentials.md.
package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/internal/filelock"
	"github.com/dockhand-ci/dockhand/internal/jsonfile"
)

// StoreFile is the job store's file name inside the job dir.
const StoreFile = "credentials.json"

// Login is one stored registry login.
type Login struct {
	ServerURL string `json:"server_url"`
	Username  string `json:"username"`
	Secret    string `json:"secret"`
}

// Store holds the logins a job made with `docker login`, in one 0600 file
// in the job dir, so they are gone with the job and out of other users'
// reach (for jobs of the same user, see docs/credentials.md).
type Store struct {
	Path string
	// Wait bounds waiting for another writer (filelock.DefaultWait when 0).
	Wait time.Duration
}

// JobStore returns the store of the job whose dir is jobDir.
func JobStore(jobDir string) *Store { return &Store{Path: filepath.Join(jobDir, StoreFile)} }

// Key reduces a server URL as docker passes it ("https://index.docker.io/v1/",
// "registry.example.com:5000", "http://127.0.0.1:5000") to the host[:port]
// that identifies the registry.
func Key(serverURL string) string {
	s := strings.TrimSpace(serverURL)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return strings.ToLower(strings.TrimSpace(serverURL))
	}
	return strings.ToLower(u.Host)
}

// ErrEmptySecret refuses a login without a secret: served back, it would
// shadow the registry's other sources with nothing.
var ErrEmptySecret = errors.New("a login with an empty secret is not stored")

// Get returns the login for a registry, or ok=false. A login without a
// secret is no login.
func (s *Store) Get(serverURL string) (Login, bool, error) {
	var l Login
	var found bool
	err := s.read(func(all map[string]Login) {
		l, found = all[Key(serverURL)]
	})
	return l, found && l.Secret != "", err
}

// Put stores or replaces a login.
func (s *Store) Put(ctx context.Context, l Login) error {
	if l.Secret == "" {
		return fmt.Errorf("%s: %w", Key(l.ServerURL), ErrEmptySecret)
	}
	return s.update(ctx, func(all map[string]Login) { all[Key(l.ServerURL)] = l })
}

// Delete removes a login; removing a missing one is not an error.
func (s *Store) Delete(ctx context.Context, serverURL string) error {
	return s.update(ctx, func(all map[string]Login) { delete(all, Key(serverURL)) })
}

// List returns every login, sorted by registry.
func (s *Store) List() ([]Login, error) {
	var out []Login
	err := s.read(func(all map[string]Login) {
		for _, k := range slices.Sorted(maps.Keys(all)) {
			out = append(out, all[k])
		}
	})
	return out, err
}

// read runs fn on the logins. It takes no lock: writers replace the file
// atomically, so a reader sees the logins before or after a write.
func (s *Store) read(fn func(map[string]Login)) error {
	all, err := s.load()
	if err != nil {
		return err
	}
	fn(all)
	return nil
}

// update runs fn on the logins and writes back what it leaves, under the
// store's flock, which serialises writers across the docker processes of
// one job, waiting for it Wait at most and no longer than ctx lasts.
func (s *Store) update(ctx context.Context, fn func(map[string]Login)) error {
	unlock, err := filelock.Lock(ctx, s.Path+".lock", s.Wait)
	if err != nil {
		return fmt.Errorf("the job's credential store: %w", err)
	}
	defer unlock()
	all, err := s.load()
	if err != nil {
		return err
	}
	fn(all)
	return jsonfile.Write(s.Path, all)
}

func (s *Store) load() (map[string]Login, error) {
	all, err := jsonfile.Read[map[string]Login](s.Path)
	if err != nil {
		return nil, fmt.Errorf("reading the job's credential store: %w", err)
	}
	if all == nil { // no login yet
		all = map[string]Login{}
	}
	return all, nil
}
