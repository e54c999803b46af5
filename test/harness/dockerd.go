package harness

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Dockerd is a running docker engine (the kit's dockerd with the containerd,
// runc and docker-init it finds on PATH) on a unix socket.
type Dockerd struct {
	Host    string // unix:///…/docker.sock, for DOCKER_HOST
	Socket  string
	DataDir string
	proc    *proc
}

// DockerdOptions configure StartDockerd.
type DockerdOptions struct {
	Name string // log and data name; default "dockerd"
	// LegacyBuilder leaves the engine reporting the classic builder, as
	// engines before 23 do; by default it reports BuildKit (features.buildkit),
	// as the Elastic CI Stack's engine (Docker 25+) does, so `docker build`
	// goes through buildx.
	LegacyBuilder bool
}

// StartDockerd starts a docker engine with its own data root, exec root,
// pidfile, socket and bridge, without iptables (containers reach nothing
// outside), and its own managed containerd. Close stops it.
func (k *Kit) StartDockerd(o DockerdOptions) (*Dockerd, error) {
	if o.Name == "" {
		o.Name = "dockerd"
	}
	dir := filepath.Join(k.Dir, o.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The exec root holds containerd's socket: keep its path short.
	run, err := os.MkdirTemp("", "dkd")
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.cleanups = append(k.cleanups, func() { _ = unmountUnder(run); os.RemoveAll(run) })
	k.mu.Unlock()
	// As on the stack, the socket is the docker group's (dockerd -G docker),
	// and the agent user, in that group, reaches it.
	if _, err := StackUser(); err != nil {
		return nil, err
	}
	if err := os.Chmod(run, 0o711); err != nil {
		return nil, err
	}
	// A bridge of its own: the engine's BuildKit runs RUN steps on the
	// bridge network, and the default docker0 would be shared by every
	// engine the tests start at once.
	bridge, err := k.addBridge()
	if err != nil {
		return nil, err
	}
	cfg := map[string]any{"features": map[string]bool{"buildkit": !o.LegacyBuilder}}
	data, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return nil, err
	}
	sock := filepath.Join(run, "docker.sock")
	d := &Dockerd{Host: "unix://" + sock, Socket: sock, DataDir: filepath.Join(dir, "data")}
	p, err := k.start(o.Name, nil, k.Bin("dockerd"),
		"--config-file", cfgPath,
		"--host", d.Host, "--group", StackGroupName,
		"--data-root", d.DataDir,
		"--exec-root", filepath.Join(run, "exec"),
		"--pidfile", filepath.Join(run, "docker.pid"),
		"--iptables=false", "--ip-masq=false", "--bridge="+bridge,
		"--containerd-namespace", "dockhand-"+o.Name, "--containerd-plugins-namespace", "dockhand-"+o.Name+"-plugins",
	)
	if err != nil {
		return nil, err
	}
	d.proc = p
	if err := p.waitReady(d.ping); err != nil {
		return nil, err
	}
	return d, nil
}

// ping asks the engine's API for _ping, as the docker CLI does first.
func (d *Dockerd) ping() error {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", d.Socket)
	}}, Timeout: 2 * time.Second}
	resp, err := c.Get("http://docker/_ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("_ping: %s", resp.Status)
	}
	return nil
}

// Stop stops the engine (and its containerd), as a host whose docker is down.
func (d *Dockerd) Stop() { d.proc.stop() }

// addBridge creates a Linux bridge with a random name and a private /24 for
// one engine; Close deletes it.
func (k *Kit) addBridge() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	name := fmt.Sprintf("dkb%x", b)
	subnet := fmt.Sprintf("10.%d.%d.1/24", 200+int(b[0])%50, b[1])
	for _, args := range [][]string{
		{"link", "add", name, "type", "bridge"},
		{"addr", "add", subnet, "dev", name},
		{"link", "set", name, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			_ = exec.Command("ip", "link", "del", name).Run()
			return "", fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	k.mu.Lock()
	k.cleanups = append(k.cleanups, func() { _ = exec.Command("ip", "link", "del", name).Run() })
	k.mu.Unlock()
	return name, nil
}
