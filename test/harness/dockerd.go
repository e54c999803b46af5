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
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/internal/filelock"
)

// Dockerd is a running docker engine (the kit's dockerd with the containerd,
// runc and docker-init it finds on PATH) on a unix socket.
type Dockerd struct {
	Host    string // unix:///…/docker.sock, for DOCKER_HOST
	Socket  string
	DataDir string
	Variant EngineVariant
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
	Engine        EngineVariant // which engine, set up how; the zero value is Debian's 20.10
}

// EngineVariant is one engine the kit runs, set up as a host may set it up.
type EngineVariant struct {
	Name string // for test names and tables: "20.10", "current", …
	// Current runs the current engine (dockerd-current, test/tools/engine)
	// instead of Debian's 20.10.
	Current bool
	// ContainerdStore keeps images in containerd (daemon.json
	// features.containerd-snapshotter, the default of new Docker 29
	// installs) instead of the classic graph driver store.
	ContainerdStore bool
	// UsernsRemap runs containers in a user namespace (--userns-remap=default,
	// the dockremap user), as the Elastic CI Stack's EnableDockerUserNamespaceRemap.
	UsernsRemap bool
	// DataMount puts the data root on a file system of its own (a loop-mounted
	// ext4), as the stack puts it on instance storage (/mnt/ephemeral/docker).
	DataMount bool
}

// The engine variants the end-to-end tests run on.
var (
	Engine2010              = EngineVariant{Name: "20.10"}
	EngineCurrent           = EngineVariant{Name: "current", Current: true}
	EngineCurrentContainerd = EngineVariant{Name: "current-containerd-store", Current: true, ContainerdStore: true}
	EngineCurrentRemap      = EngineVariant{Name: "current-userns-remap", Current: true, UsernsRemap: true}
	EngineCurrentMount      = EngineVariant{Name: "current-data-mount", Current: true, DataMount: true}
)

// EngineVariants are every variant, oldest engine first; the last is the
// newest engine as new installs set it up.
func EngineVariants() []EngineVariant {
	return []EngineVariant{Engine2010, EngineCurrent, EngineCurrentRemap, EngineCurrentMount, EngineCurrentContainerd}
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
	v := o.Engine
	if (v.ContainerdStore || v.UsernsRemap) && !v.Current {
		return nil, fmt.Errorf("engine %s: the containerd store and userns-remap are set up on the current engine only", v.Name)
	}
	features := map[string]bool{"buildkit": !o.LegacyBuilder}
	if v.ContainerdStore {
		features["containerd-snapshotter"] = true
	}
	data, _ := json.Marshal(map[string]any{"features": features})
	cfgPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return nil, err
	}
	sock := filepath.Join(run, "docker.sock")
	d := &Dockerd{Host: "unix://" + sock, Socket: sock, DataDir: filepath.Join(dir, "data"), Variant: v}
	if v.DataMount {
		if err := k.mountDataRoot(d.DataDir); err != nil {
			return nil, err
		}
	}
	bin, env := k.Bin("dockerd"), []string(nil)
	args := []string{
		"--config-file", cfgPath,
		"--host", d.Host, "--group", StackGroupName,
		"--data-root", d.DataDir,
		"--exec-root", filepath.Join(run, "exec"),
		"--pidfile", filepath.Join(run, "docker.pid"),
		"--iptables=false", "--ip-masq=false", "--bridge=" + bridge,
		"--containerd-namespace", "dockhand-" + o.Name, "--containerd-plugins-namespace", "dockhand-" + o.Name + "-plugins",
	}
	if v.Current {
		// Its containerd 2 and shim come first on its PATH only (see
		// test/tools/install.sh); the engine manages that containerd.
		if bin, err = filepath.EvalSymlinks(k.Bin("dockerd-current")); err != nil {
			return nil, fmt.Errorf("the current engine: %w (make tools builds it)", err)
		}
		env = []string{"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + k.Path()}
		args = append(args, "--ip6tables=false", "--userland-proxy-path", filepath.Join(filepath.Dir(bin), "docker-proxy"))
	}
	if v.UsernsRemap {
		// dockerd makes the dockremap user and its subordinate id ranges
		// the first time; engines starting at once must not race to.
		release, err := filelock.Lock(context.Background(), filepath.Join(os.TempDir(), "dockhand-dockremap.lock"), 0)
		if err != nil {
			return nil, err
		}
		defer release()
		if err := ensureRemapUser(); err != nil {
			return nil, err
		}
		// The remapped root must pass through every dir above the data root.
		if err := Passable(d.DataDir); err != nil {
			return nil, err
		}
		args = append(args, "--userns-remap=default")
	}
	p, err := k.start(o.Name, env, append([]string{bin}, args...)...)
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

// LogPath is the engine's log file (its stdout and stderr).
func (d *Dockerd) LogPath() string { return d.proc.log }

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

// mountDataRoot mounts a file system of its own at dir: ext4 on a sparse
// image file, loop-mounted; the kit's Close unmounts it (the loop device
// goes with the mount).
func (k *Kit) mountDataRoot(dir string) error {
	img := dir + ".img"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"truncate", "-s", "8G", img},
		{"mkfs.ext4", "-q", "-F", img},
		{"mount", "-o", "loop", img, dir},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("data root on a mount of its own: %s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	return nil
}

// RemapUser is the user --userns-remap=default maps containers' ids to.
const RemapUser = "dockremap"

// ensureRemapUser makes the dockremap user with subordinate uid and gid
// ranges of its own, as dockerd would, but far above the ranges other users
// of the kit get from 100000 on (dockerd itself may pick an overlapping one).
func ensureRemapUser() error {
	if _, err := user.Lookup(RemapUser); err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/bin/false", RemapUser).CombinedOutput(); err != nil {
			return fmt.Errorf("useradd %s: %v: %s", RemapUser, err, out)
		}
	}
	for _, f := range []struct{ file, flag string }{{"/etc/subuid", "--add-subuids"}, {"/etc/subgid", "--add-subgids"}} {
		b, err := os.ReadFile(f.file)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		if strings.Contains("\n"+string(b), "\n"+RemapUser+":") {
			continue
		}
		if out, err := exec.Command("usermod", f.flag, "500000000-500065535", RemapUser).CombinedOutput(); err != nil {
			return fmt.Errorf("usermod %s %s: %v: %s", f.flag, RemapUser, err, out)
		}
	}
	return nil
}
