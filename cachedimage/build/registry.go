package build

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
)

// credentials are the job's registry credentials: its docker config, with
// whatever credential helper (credsStore, credHelpers) that config names.
type credentials struct {
	cfg *configfile.ConfigFile
}

func loadCredentials(dockerConfig string) (*credentials, error) {
	if dockerConfig == "" {
		return &credentials{cfg: configfile.New("")}, nil
	}
	cfg, err := config.Load(dockerConfig)
	if err != nil {
		return nil, fmt.Errorf("reading the docker config in %s: %w", dockerConfig, err)
	}
	return &credentials{cfg: cfg}, nil
}

// lookup returns the username and secret for a registry host ("" for
// anonymous); Docker Hub's credentials live under its v1 index URL.
func (c *credentials) lookup(host string) (string, string, error) {
	key := host
	if host == "registry-1.docker.io" || host == "docker.io" {
		key = "https://index.docker.io/v1/"
	}
	a, err := c.cfg.GetAuthConfig(key)
	if err != nil {
		return "", "", fmt.Errorf("credentials for %s: %w", host, err)
	}
	if a.IdentityToken != "" {
		return "", a.IdentityToken, nil
	}
	return a.Username, a.Password, nil
}

// plainHTTP says whether to reach a registry over plain HTTP: only on
// loopback, as docker and buildkit allow.
func plainHTTP(host string) (bool, error) {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback(), nil
}

// manifestExists asks the registry whether ref (HOST/REPO:TAG) has a
// manifest: a HEAD request (GET where HEAD is refused), authenticated with
// the job's credentials, pulling nothing.
func manifestExists(ctx context.Context, ref string, c *credentials) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(
			docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(c.lookup))),
			docker.WithPlainHTTP(plainHTTP),
			docker.WithClient(&http.Client{Timeout: 30 * time.Second}),
		),
	})
	_, _, err := resolver.Resolve(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case errdefs.IsNotFound(err):
		return false, nil
	case strings.Contains(err.Error(), "not found"):
		// A repository that does not exist yet answers NAME_UNKNOWN (404).
		return false, nil
	}
	var unexpected remoteerrors.ErrUnexpectedStatus
	if errors.As(err, &unexpected) && unexpected.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return false, err
}
