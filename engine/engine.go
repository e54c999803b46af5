// Package engine is what dockhand asks a docker engine directly: an HTTP
// client for a DOCKER_HOST endpoint (unix socket or tcp), and where the
// engine keeps its images, which decides whether its own builder can write a
// cache.
package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
)

// Where a docker engine keeps its images: the containerd image store
// (features.containerd-snapshotter, the default of new Docker 29 installs),
// whose builder can export cache, or the classic graph driver store, whose
// builder cannot.
const (
	StoreContainerd = "containerd"
	StoreClassic    = "classic"
)

// ImageStoreOf reads an engine's `GET /info` answer: StoreContainerd when
// its storage driver is a containerd snapshotter (DriverStatus driver-type
// io.containerd.snapshotter.v1, as buildx reads it), StoreClassic for any
// other driver, "" when the answer is not an engine's info.
func ImageStoreOf(info []byte) string {
	var i struct {
		Driver       string
		DriverStatus [][]string
	}
	if json.Unmarshal(info, &i) != nil || i.Driver == "" {
		return ""
	}
	for _, kv := range i.DriverStatus {
		if len(kv) == 2 && kv[0] == "driver-type" && kv[1] == "io.containerd.snapshotter.v1" {
			return StoreContainerd
		}
	}
	return StoreClassic
}

// ImageStore asks the engine the job's docker CLI talks to (DOCKER_HOST,
// else the default socket) where it keeps its images, for the builder called
// builder: only "default" is that engine's own builder (another name is
// another docker context). "" when it cannot tell within timeout (or before
// ctx ends), or when DOCKER_CONTEXT points the CLI elsewhere.
func ImageStore(ctx context.Context, lookup func(string) string, builder string, timeout time.Duration) string {
	if !strings.EqualFold(builder, "default") {
		return ""
	}
	if c := lookup("DOCKER_CONTEXT"); c != "" && c != "default" {
		return ""
	}
	host := lookup("DOCKER_HOST")
	if host == "" {
		host = buildx.DefaultDockerHost
	}
	hc, base, err := Client(host)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/info", nil)
	if err != nil {
		return ""
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ""
	}
	return ImageStoreOf(body)
}

// Client is an HTTP client for the docker engine at host (unix:// or
// tcp://, no TLS) and the base URL of its API, without keep-alives.
func Client(host string) (*http.Client, string, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, "", fmt.Errorf("bad docker host %q", host)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	base := "http://docker"
	switch u.Scheme {
	case "unix":
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", u.Path)
		}
	case "tcp":
		base = "http://" + u.Host
	default:
		return nil, "", fmt.Errorf("docker host %q: only unix:// and tcp:// can be probed", host)
	}
	return &http.Client{Transport: tr}, base, nil
}
