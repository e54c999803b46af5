// Package probe checks builder health: a buildkitd with the BuildKit Go
// client (ListWorkers, which is what buildx's remote driver asks too), a
// docker daemon with its /_ping API. Every target is probed in parallel and
// nothing outlives the request's deadline, so a refused, hanging or
// TLS-failing endpoint costs at most that.
//
// It links gRPC and BuildKit: only dockhand-cloud imports it.
package buildkit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/platforms"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/engine"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"
)

// Run probes every target of req in parallel and returns one result per
// target, in order, all within req.Deadline.
func Run(ctx context.Context, req cloud.ProbeRequest) []cloud.ProbeResult {
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = time.Until(req.Deadline)
	}
	results := make([]cloud.ProbeResult, len(req.Targets))
	var wg sync.WaitGroup
	for i, t := range req.Targets {
		wg.Go(func() {
			start := time.Now()
			var r cloud.ProbeResult
			switch t.Kind {
			case cloud.ProbeBuildkit:
				r = buildkit(ctx, t)
			case cloud.ProbeDocker:
				r = docker(ctx, t)
			default:
				r.Error = fmt.Sprintf("unknown probe kind %q", t.Kind)
			}
			r.Kind, r.Endpoint, r.At = t.Kind, t.Endpoint, start
			r.Latency = time.Since(start)
			if !r.OK && r.Error == "" {
				r.Error = "no answer"
			}
			if ctx.Err() != nil && !r.OK {
				r.Error = fmt.Sprintf("no answer within %s", roundTimeout(timeout))
			}
			results[i] = r
		})
	}
	wg.Wait()
	return results
}

func roundTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d.Round(10 * time.Millisecond)
}

// buildkit asks a buildkitd for its workers.
// clientOpts are the BuildKit client options for t: mTLS on tcp://.
func clientOpts(t cloud.ProbeTarget) []client.ClientOpt {
	var opts []client.ClientOpt
	if t.TLS.Enabled() && strings.HasPrefix(t.Endpoint, "tcp://") {
		serverName := t.TLS.ServerName
		if serverName == "" {
			if u, err := url.Parse(t.Endpoint); err == nil {
				serverName = u.Hostname()
			}
		}
		opts = append(opts, client.WithServerConfig(serverName, t.TLS.CA))
		if t.TLS.Cert != "" || t.TLS.Key != "" {
			opts = append(opts, client.WithCredentials(t.TLS.Cert, t.TLS.Key))
		}
	}
	return opts
}

func buildkit(ctx context.Context, t cloud.ProbeTarget) cloud.ProbeResult {
	opts := clientOpts(t)
	if sock, ok := strings.CutPrefix(t.Endpoint, "unix://"); ok {
		if _, err := os.Stat(sock); err != nil {
			return cloud.ProbeResult{Error: "no socket at " + sock}
		}
	}
	c, err := client.New(ctx, t.Endpoint, opts...)
	if err != nil {
		return cloud.ProbeResult{Error: Describe(err)}
	}
	defer c.Close()
	workers, err := c.ListWorkers(ctx)
	if err != nil {
		why := Describe(err)
		// With TLS 1.3 a server that rejects the client's certificate says so
		// after the client's side of the handshake is done: gRPC may see only
		// the closed connection. A plain handshake and read get the alert.
		if opts != nil && !strings.HasPrefix(why, "TLS: ") && why != "connection refused" && ctx.Err() == nil {
			if alert := tlsAlert(ctx, t); alert != "" {
				why = "TLS: " + alert
			}
		}
		return cloud.ProbeResult{Error: why}
	}
	if len(workers) == 0 {
		return cloud.ProbeResult{Error: "buildkitd has no workers"}
	}
	r := cloud.ProbeResult{OK: true, Version: workers[0].BuildkitVersion.Version}
	r.Active, err = activeBuilds(ctx, c)
	if err != nil {
		r.LoadError = Describe(err)
	}
	seen := map[string]bool{}
	for _, w := range workers {
		for _, p := range w.Platforms {
			if s := platforms.Format(p); !seen[s] {
				seen[s] = true
				r.Platforms = append(r.Platforms, s)
			}
		}
	}
	return r
}

// activeBuilds counts the builds a buildkitd is running or queueing: the
// records its history lists as active (a build waiting for a step slot
// under max-parallelism is one of them).
func activeBuilds(ctx context.Context, c *client.Client) (int, error) {
	stream, err := c.ControlClient().ListenBuildHistory(ctx, &controlapi.BuildHistoryRequest{ActiveOnly: true, EarlyExit: true})
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		if ev.GetType() == controlapi.BuildHistoryEventType_STARTED {
			n++
		}
	}
}

// tlsAlert makes one TLS connection as the client would and returns the
// error the server answers with ("" when the server accepts it).
func tlsAlert(ctx context.Context, t cloud.ProbeTarget) string {
	u, err := url.Parse(t.Endpoint)
	if err != nil {
		return ""
	}
	cfg := &tls.Config{ServerName: t.TLS.ServerName, NextProtos: []string{"h2"}}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	if t.TLS.CA != "" {
		pem, err := os.ReadFile(t.TLS.CA)
		if err != nil {
			return ""
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(pem)
	}
	if t.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(t.TLS.Cert, t.TLS.Key)
		if err != nil {
			return ""
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "tls: ") {
			return msg // a handshake failure; not a refused or lost connection
		}
		return ""
	}
	defer conn.Close()
	// An accepting server waits for the HTTP/2 preface; a rejecting one has
	// sent its alert.
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(minTime(dl, time.Now().Add(200*time.Millisecond)))
	}
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return ""
	}
	if strings.Contains(err.Error(), "tls: ") {
		return err.Error()
	}
	return ""
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// docker pings a docker daemon's API and asks its version.
func docker(ctx context.Context, t cloud.ProbeTarget) cloud.ProbeResult {
	hc, base, err := engine.Client(t.Endpoint)
	if err != nil {
		return cloud.ProbeResult{Error: err.Error()}
	}
	sock, isUnix := strings.CutPrefix(t.Endpoint, "unix://")
	if isUnix {
		if _, err := os.Stat(sock); errors.Is(err, fs.ErrPermission) {
			return cloud.ProbeResult{Error: deniedSocket(sock)}
		} else if err != nil {
			return cloud.ProbeResult{Error: "no socket at " + sock}
		}
	}
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return body, nil
	}
	if _, err := get("/_ping"); errors.Is(err, syscall.EACCES) && isUnix {
		return cloud.ProbeResult{Error: deniedSocket(sock)}
	} else if err != nil {
		return cloud.ProbeResult{Error: Describe(err)}
	}
	r := cloud.ProbeResult{OK: true}
	if body, err := get("/version"); err == nil {
		var v struct{ Version string }
		if json.Unmarshal(body, &v) == nil {
			r.Version = v.Version
		}
	}
	return r
}

// deniedSocket says why this process's user may not use the docker engine's
// socket at path, and what fixes it. On the Elastic CI Stack the socket is
// the docker group's (dockerd --group docker), 0660, and the agent user is
// in that group.
func deniedSocket(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fmt.Sprintf(cloud.SocketDenied+"uid %d may not reach the socket %s (%v): let the agent user search the dirs above it", os.Getuid(), path, err)
	}
	group := strconv.Itoa(int(st.Gid))
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	mode := st.Mode & 0o777
	if mode&0o060 != 0o060 {
		return fmt.Sprintf(cloud.SocketDenied+"uid %d may not use the socket %s (mode %04o, group %s): make it the docker group's, read-write (dockerd --group docker), and put the agent user in that group", os.Getuid(), path, mode, group)
	}
	return fmt.Sprintf(cloud.SocketDenied+"uid %d may not use the socket %s (mode %04o, group %s; this process is not in that group): add the agent user to group %s (usermod -aG %s USER) and restart the agent, which keeps the groups it started with", os.Getuid(), path, mode, group, group, group)
}

// Describe turns a dial, TLS or gRPC error into a short reason for the job
// log, such as "connection refused" or "TLS: remote error: tls: certificate
// required".
func Describe(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	// Local files first: they wrap fs errors that would read as "no such file".
	for _, f := range []struct{ needle, say string }{
		{"could not read ca certificate", "cannot read the CA file"},
		{"failed to append ca certs", "the CA file holds no PEM certificate"},
		{"could not read certificate/key", "cannot read the client certificate or key"},
	} {
		if strings.Contains(msg, f.needle) {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return fmt.Sprintf("%s %s: %v", f.say, pe.Path, pe.Err)
			}
			return f.say
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	// The gRPC status text carries the transport's error.
	for _, marker := range []string{"authentication handshake failed: ", "error reading server preface: "} {
		if i := strings.LastIndex(msg, marker); i >= 0 {
			return "TLS: " + strings.TrimSuffix(strings.TrimSpace(msg[i+len(marker):]), `"`)
		}
	}
	for _, known := range []struct{ needle, say string }{
		{"connection refused", "connection refused"},
		{"no such host", "no such host"},
		{"network is unreachable", "network is unreachable"},
		{"no route to host", "no route to host"},
		{"connection reset by peer", "connection reset by peer"},
		{"context deadline exceeded", "no answer in time"},
		{"DeadlineExceeded", "no answer in time"},
	} {
		if strings.Contains(msg, known.needle) {
			return known.say
		}
	}
	for _, prefix := range []string{"failed to list workers: ", "rpc error: ", "code = Unavailable desc = ", "connection error: desc = "} {
		if i := strings.Index(msg, prefix); i >= 0 {
			msg = msg[i+len(prefix):]
		}
	}
	msg = strings.Trim(msg, `" `)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return msg
}
