package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dockhand-ci/dockhand/fleet/certs"
)

// BuildkitdOptions configure StartBuildkitdWith.
type BuildkitdOptions struct {
	Name               string   // log and data name; default "buildkitd"
	InsecureRegistries []string // host:port registries reached over plain HTTP
	// TCP also listens on tcp://127.0.0.1:PORT (Buildkitd.TCPAddr), with
	// mutual TLS when TLS is set. The unix socket stays plain, for tools.
	TCP bool
	// Listen is the TCP HOST:PORT to listen on instead of a free
	// 127.0.0.1 port (as the nodes of a fleet share one port on their own
	// addresses: 127.0.0.2:PORT, 127.0.0.3:PORT, ...).
	Listen string
	TLS    *TLSFiles // server side: CA, Cert and Key (client certificates required)
	// Platforms are declared with --oci-worker-platform (as a node of
	// another architecture would report them).
	Platforms []string
	// Env is extra environment for the daemon, such as the AWS credentials
	// its S3 cache backend reads (never on its command line).
	Env []string
	// MaxParallelism limits the steps the worker runs at once (the
	// worker's max-parallelism); 0 leaves BuildKit's default.
	MaxParallelism int
}

// StartBuildkitdWith starts buildkitd with a fresh root.
func (k *Kit) StartBuildkitdWith(o BuildkitdOptions) (*Buildkitd, error) {
	if o.Name == "" {
		o.Name = "buildkitd"
	}
	dir := filepath.Join(k.Dir, o.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var config strings.Builder
	config.WriteString("[worker.oci]\n  enabled = true\n  gc = false\n")
	if o.MaxParallelism > 0 {
		fmt.Fprintf(&config, "  max-parallelism = %d\n", o.MaxParallelism)
	}
	config.WriteString("[worker.containerd]\n  enabled = false\n")
	for _, r := range o.InsecureRegistries {
		fmt.Fprintf(&config, "[registry.%q]\n  http = true\n", r)
	}
	configPath := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(configPath, []byte(config.String()), 0o600); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "buildkitd.sock")
	// The socket is the docker group's, as the engine's is: the stack's
	// agent user, in that group, reaches it.
	u, err := StackUser()
	if err != nil {
		return nil, err
	}
	if err := Passable(sock); err != nil {
		return nil, err
	}
	args := []string{k.Bin("buildkitd"),
		"--config", configPath,
		"--root", filepath.Join(dir, "root"),
		"--addr", "unix://" + sock,
		"--group", strconv.Itoa(u.Docker),
	}
	b := &Buildkitd{Addr: "unix://" + sock, Root: filepath.Join(dir, "root")}
	if o.TCP {
		addr := o.Listen
		if addr == "" {
			var err error
			if addr, err = freePort(); err != nil {
				return nil, err
			}
		}
		b.TCPAddr = "tcp://" + addr
		args = append(args, "--addr", b.TCPAddr)
	}
	if o.TLS != nil {
		args = append(args, "--tlscacert", o.TLS.CA, "--tlscert", o.TLS.Cert, "--tlskey", o.TLS.Key)
	}
	for _, p := range o.Platforms {
		args = append(args, "--oci-worker-platform", p)
	}
	p, err := k.start(o.Name, o.Env, args...)
	if err != nil {
		return nil, err
	}
	b.proc = p
	ready := dialReady("unix", sock)
	if o.TCP {
		tcp := dialReady("tcp", strings.TrimPrefix(b.TCPAddr, "tcp://"))
		ready = func() error {
			if err := dialReady("unix", sock)(); err != nil {
				return err
			}
			return tcp()
		}
	}
	if err := p.waitReady(ready); err != nil {
		return nil, err
	}
	return b, nil
}

// Stop ends this buildkitd (as a crashed or terminated builder would be),
// waiting until it has exited.
func (b *Buildkitd) Stop() {
	if b.proc != nil {
		b.proc.stop()
	}
}

// TLSFiles are the paths of one party's mTLS material.
type TLSFiles struct {
	CA, Cert, Key string
}

// FleetTLS is the mTLS material of a test builder fleet, made with
// dockhand's own certs package: the server certificate is valid for
// 127.0.0.1, localhost and buildkitd.test.
type FleetTLS struct {
	Dir    string
	Server TLSFiles
	Client TLSFiles // issued by the fleet's CA
	Rogue  TLSFiles // a client certificate from another CA, with the fleet's CA to verify the server
}

// NewFleetTLS writes a fleet's CA, server and client certificates under
// k.Dir/name, plus a rogue client certificate signed by another CA.
func (k *Kit) NewFleetTLS(name string) (*FleetTLS, error) {
	dir := filepath.Join(k.Dir, name)
	now := time.Now()
	if _, err := certs.WriteDir(certs.WriteOptions{
		Dir: dir, ServerSANs: []string{"127.0.0.1", "localhost", "buildkitd.test"}, Clients: []string{"client"},
		Validity: 24 * time.Hour, Now: now,
	}); err != nil {
		return nil, err
	}
	rogueDir := filepath.Join(dir, "rogue")
	if _, err := certs.WriteDir(certs.WriteOptions{Dir: rogueDir, Clients: []string{"client"}, Validity: 24 * time.Hour, Now: now}); err != nil {
		return nil, err
	}
	ca := filepath.Join(dir, certs.CAFile)
	f := &FleetTLS{
		Dir:    dir,
		Server: TLSFiles{CA: ca, Cert: filepath.Join(dir, certs.ServerFile), Key: filepath.Join(dir, certs.ServerKeyFile)},
		Client: TLSFiles{CA: ca, Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem")},
		Rogue:  TLSFiles{CA: ca, Cert: filepath.Join(rogueDir, "client.pem"), Key: filepath.Join(rogueDir, "client-key.pem")},
	}
	// The agents' certificates are the agent user's, as the agent AMI
	// installs them; the server's key stays root's.
	u, err := StackUser()
	if err != nil {
		return nil, err
	}
	for _, p := range []string{f.Client.Cert, f.Client.Key, f.Rogue.Cert, f.Rogue.Key} {
		if err := Passable(p); err != nil {
			return nil, err
		}
		if err := u.Chown(p); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Hanging is a TCP endpoint that accepts connections and never answers, as
// a wedged builder or a black-holing proxy would.
type Hanging struct {
	Addr  string // tcp://127.0.0.1:PORT
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

// StartHanging starts a hanging endpoint; Close stops it.
func StartHanging() (*Hanging, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &Hanging{Addr: "tcp://" + l.Addr().String(), l: l, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	return h, nil
}

// Accepted is how many connections the endpoint has accepted.
func (h *Hanging) Accepted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Close stops accepting and drops every held connection.
func (h *Hanging) Close() {
	h.l.Close()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}

// StopPid ends a process the test did not start itself (a daemon dockhand
// detached): SIGTERM, then SIGKILL after grace, waiting until it is gone.
func StopPid(pid int, grace time.Duration) error {
	alive := func() bool { return Alive(pid) }
	if !alive() {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for alive() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // bounded wait for its exit
	}
	if alive() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		deadline = time.Now().Add(5 * time.Second)
		for alive() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if alive() {
		return fmt.Errorf("process %d still alive after SIGKILL", pid)
	}
	return nil
}

// Alive reports whether pid is a running process (not a zombie).
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// UnmountUnder detaches every mount point below dir (a buildkitd's
// leftovers), deepest first.
func UnmountUnder(dir string) error { return unmountUnder(dir) }
