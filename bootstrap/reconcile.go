package bootstrap

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/internal/safefile"
	"github.com/dockhand-ci/dockhand/registry"
)

// Reconciled is what Reconcile did.
type Reconciled struct {
	DockerConfig string   // the job's docker config dir, for DOCKER_CONFIG
	From         string   // the docker config the environment pointed at instead ("" if none)
	Imported     []string // registries whose logins or helpers were carried over
	// Lines are what the job log should say of it, with their severity:
	// what could not be carried over, what the credential helper could
	// not do (a login not added to the log redactor).
	Lines []joblog.Line
}

// foreignConfig is what dockhand reads of a docker config another hook
// created (the Elastic stack's `mktemp -d`, the docker-login plugin's).
type foreignConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredHelpers map[string]string `json:"credHelpers"`
	CredsStore  string            `json:"credsStore"`
}

// Reconcile makes the job's docker config the one in use again after a hook
// pointed DOCKER_CONFIG elsewhere. Logins written there (`auths`) move into
// the job's credential store and `credHelpers` into the job's config.json,
// so one config holds dockhand's helper, builder and shim plus those logins.
// The other dir is left alone: its owner (the stack's pre-exit) deletes it.
// Each carried-over secret goes to the job's log redactor (the Job API named
// in e) as a `docker login`'s does. ctx ends its waits for the store's and
// the redactor's locks.
func Reconcile(ctx context.Context, jobDir, current string, e *agentenv.Environment) (r Reconciled, err error) {
	r = Reconciled{DockerConfig: filepath.Join(jobDir, "docker")}
	if current == "" || filepath.Clean(current) == r.DockerConfig {
		return r, nil
	}
	r.From = current
	data, err := os.ReadFile(filepath.Join(current, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("reading %s: %w", current, err)
	}
	var fc foreignConfig
	if err := json.Unmarshal(data, &fc); err != nil {
		r.Lines = append(r.Lines, joblog.Warningf("%s/config.json is not valid JSON; nothing carried over", current))
		return r, nil
	}
	if fc.CredsStore != "" && fc.CredsStore != CredsStore {
		r.Lines = append(r.Lines, joblog.Warningf("%s names credsStore %q; its logins stay in that store", current, fc.CredsStore))
	}
	logins := registry.New(registry.Options{JobDir: jobDir, Env: e, Log: joblog.Keep(&r.Lines)})
	for _, host := range slices.Sorted(maps.Keys(fc.Auths)) {
		a := fc.Auths[host]
		user, secret := a.Username, a.Password
		if a.Auth != "" {
			if raw, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
				user, secret, _ = strings.Cut(string(raw), ":")
			}
		}
		if a.IdentityToken != "" {
			user, secret = "<token>", a.IdentityToken
		}
		if secret == "" {
			continue
		}
		if err := logins.AddLogin(ctx, registry.Login{ServerURL: host, Username: user, Secret: secret}); err != nil {
			return r, err
		}
		r.Imported = append(r.Imported, host)
	}
	if len(fc.CredHelpers) > 0 || len(r.Imported) > 0 {
		// The logins also go where docker reads them without dockhand's
		// helper: the job config's auths, as docker wrote them there.
		var raw struct {
			Auths map[string]json.RawMessage `json:"auths"`
		}
		_ = json.Unmarshal(data, &raw)
		auths := map[string]json.RawMessage{}
		for _, host := range r.Imported {
			auths[host] = raw.Auths[host]
		}
		if err := mergeCredentials(filepath.Join(r.DockerConfig, "config.json"), auths, fc.CredHelpers); err != nil {
			return r, err
		}
		r.Imported = append(r.Imported, slices.Sorted(maps.Keys(fc.CredHelpers))...)
	}
	return r, nil
}

// mergeCredentials adds auths entries (keeping the job's own for a host)
// and credHelpers entries to a config.json, atomically.
func mergeCredentials(path string, auths map[string]json.RawMessage, helpers map[string]string) error {
	return updateJobConfig(path, func(cfg map[string]any) {
		for key, add := range map[string]map[string]any{"auths": anyMap(auths), "credHelpers": anyMap(helpers)} {
			if len(add) == 0 {
				continue
			}
			m, _ := cfg[key].(map[string]any)
			if m == nil {
				m = map[string]any{}
			}
			for k, v := range add {
				if _, ok := m[k]; !ok || key == "credHelpers" {
					m[k] = v
				}
			}
			cfg[key] = m
		}
	})
}

func anyMap[V any](m map[string]V) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// updateJobConfig changes the job's config.json with change, atomically.
func updateJobConfig(path string, change func(map[string]any)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the job's docker config: %w", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("reading the job's docker config %s: %w", path, err)
	}
	change(cfg)
	out, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return err
	}
	return safefile.Write(path, out)
}
