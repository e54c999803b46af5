package buildx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/dockhand-ci/dockhand/internal/filelock"

	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// buildx drivers dockhand writes instances for.
const (
	DriverRemote = "remote"
	DriverDocker = "docker"
)

// Instance names dockhand gives its builders.
const (
	RemoteName    = "dockhand-remote"
	NamespaceName = "dockhand-namespace"
	EmbeddedName  = "dockhand-embedded"
	// RetryName is the instance the shim runs a lost build again on.
	RetryName = RemoteName + "-retry"
	// NamespaceDocsName is the builder Namespace's own setup creates and its
	// docs' pipelines name with --builder.
	NamespaceDocsName = "nsc-remote"
)

// TLS is the client side of a builder's mTLS: absolute paths, never the
// material itself.
type TLS struct {
	CA         string `json:"ca,omitempty"`
	Cert       string `json:"cert,omitempty"`
	Key        string `json:"key,omitempty"`
	ServerName string `json:"server_name,omitempty"`
}

// Enabled reports whether TLS is configured (a CA is what buildx requires).
func (t TLS) Enabled() bool { return t.CA != "" || t.Cert != "" || t.Key != "" }

// Node is one node of a buildx builder.
type Node struct {
	Name      string
	Endpoint  string
	Platforms []string // os/arch[/variant]; none: whatever the node's workers report
	TLS       TLS      // remote nodes on tcp://
}

// Builder is a buildx builder: what the job's BUILDX_BUILDER names.
type Builder struct {
	Kind        string
	Name        string // buildx instance name ("default" for the host daemon's own builder)
	Driver      string
	Nodes       []Node
	DefaultLoad bool // default-load=true: `docker build` with no output loads into the host's docker
}

// Loadable reports whether every build on nodes can load its result into a
// docker engine's classic image store: a single node, or nodes that each
// build one platform (buildx sends each platform of a multi-platform build to
// its own node, so each loads a single-platform image). A node that may
// build several platforms at once would fail the load of a manifest list.
func Loadable(nodes []Node) bool {
	if len(nodes) == 1 {
		return true
	}
	for _, n := range nodes {
		if len(n.Platforms) != 1 {
			return false
		}
	}
	return len(nodes) > 0
}

// Endpoint is the builder's default node's endpoint, the one BUILDKIT_HOST
// names.
func (b Builder) Endpoint() string {
	if len(b.Nodes) == 0 {
		return ""
	}
	return b.Nodes[0].Endpoint
}

// Endpoints lists every node's endpoint.
func (b Builder) Endpoints() []string {
	eps := make([]string, len(b.Nodes))
	for i, n := range b.Nodes {
		eps[i] = n.Endpoint
	}
	return eps
}

// The buildx store's on-disk instance format (docker/buildx store.NodeGroup;
// plain encoding/json, so the field names are the Go ones).
type nodeGroup struct {
	Name    string
	Driver  string
	Nodes   []storeNode
	Dynamic bool
}

type storeNode struct {
	Name       string
	Endpoint   string
	Platforms  []ociPlatform
	DriverOpts map[string]string
	Flags      []string
	Files      map[string][]byte
}

type ociPlatform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// instanceName is compiled on first use: package initialisation is on the
// start-up path of every dockhand call.
var instanceName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9.\-_]*$`) })

// InstanceJSON renders b as a buildx instance file. dockhand writes only
// remote-driver instances (the docker driver is the engine's own builder,
// which has none). Driver options hold paths and flags, never secrets.
func InstanceJSON(b Builder) ([]byte, error) {
	if !instanceName().MatchString(b.Name) {
		return nil, fmt.Errorf("builder name %q is not a valid buildx instance name", b.Name)
	}
	if b.Driver != DriverRemote {
		return nil, fmt.Errorf("builder %s: driver %q has no instance file", b.Name, b.Driver)
	}
	if len(b.Nodes) == 0 {
		return nil, fmt.Errorf("builder %s has no nodes", b.Name)
	}
	ng := nodeGroup{Name: b.Name, Driver: b.Driver}
	for _, n := range b.Nodes {
		sn := storeNode{Name: n.Name, Endpoint: n.Endpoint, DriverOpts: map[string]string{}}
		for _, p := range n.Platforms {
			op, err := parsePlatform(p)
			if err != nil {
				return nil, fmt.Errorf("builder %s node %s: %w", b.Name, n.Name, err)
			}
			sn.Platforms = append(sn.Platforms, op)
		}
		if b.Driver == DriverRemote && n.TLS.Enabled() && strings.HasPrefix(n.Endpoint, "tcp://") {
			for k, v := range map[string]string{"cacert": n.TLS.CA, "cert": n.TLS.Cert, "key": n.TLS.Key} {
				if v == "" {
					continue
				}
				if !filepath.IsAbs(v) {
					return nil, fmt.Errorf("builder %s: %s path %q is not absolute (buildx requires absolute paths)", b.Name, k, v)
				}
				sn.DriverOpts[k] = v
			}
			if n.TLS.ServerName != "" {
				sn.DriverOpts["servername"] = n.TLS.ServerName
			}
		}
		if b.DefaultLoad {
			sn.DriverOpts["default-load"] = "true"
		}
		ng.Nodes = append(ng.Nodes, sn)
	}
	return json.Marshal(ng)
}

// ParseInstance reads a buildx instance file back into a Builder (of kind
// kind), as nsc or dockhand wrote it.
func ParseInstance(kind string, data []byte) (Builder, error) {
	var ng nodeGroup
	if err := json.Unmarshal(data, &ng); err != nil {
		return Builder{}, err
	}
	b := Builder{Kind: kind, Name: ng.Name, Driver: ng.Driver}
	for _, sn := range ng.Nodes {
		n := Node{Name: sn.Name, Endpoint: sn.Endpoint, TLS: TLS{
			CA: sn.DriverOpts["cacert"], Cert: sn.DriverOpts["cert"], Key: sn.DriverOpts["key"], ServerName: sn.DriverOpts["servername"],
		}}
		for _, p := range sn.Platforms {
			s := p.OS + "/" + p.Architecture
			if p.Variant != "" {
				s += "/" + p.Variant
			}
			n.Platforms = append(n.Platforms, s)
		}
		if sn.DriverOpts["default-load"] == "true" {
			b.DefaultLoad = true
		}
		b.Nodes = append(b.Nodes, n)
	}
	if len(b.Nodes) == 0 {
		return b, fmt.Errorf("builder %q has no nodes", ng.Name)
	}
	return b, nil
}

func parsePlatform(s string) (ociPlatform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ociPlatform{}, fmt.Errorf("platform %q is not os/arch[/variant]", s)
	}
	p := ociPlatform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// InstancePath is where buildx keeps the instance called name in a docker
// config dir (buildx lower-cases the file name).
func InstancePath(dockerConfig, name string) string {
	return filepath.Join(dockerConfig, "buildx", "instances", strings.ToLower(name))
}

// WriteInstance writes b into dockerConfig's buildx store, atomically and
// 0600, holding the store's lock as buildx itself does (waiting for it no
// longer than ctx lasts).
func WriteInstance(ctx context.Context, dockerConfig string, b Builder) error {
	data, err := InstanceJSON(b)
	if err != nil {
		return err
	}
	store := filepath.Join(dockerConfig, "buildx")
	if err := os.MkdirAll(filepath.Join(store, "instances"), 0o700); err != nil {
		return fmt.Errorf("creating the buildx store: %w", err)
	}
	release, err := filelock.Lock(ctx, filepath.Join(store, ".lock"), 0)
	if err != nil {
		return fmt.Errorf("locking the buildx store: %w", err)
	}
	defer release()
	return safefile.Write(InstancePath(dockerConfig, b.Name), data)
}

// ReadInstance reads the instance called name from dockerConfig's store.
func ReadInstance(dockerConfig, kind, name string) (Builder, error) {
	p := InstancePath(dockerConfig, name)
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Builder{}, fmt.Errorf("no buildx instance %q in %s", name, filepath.Dir(p))
		}
		return Builder{}, err
	}
	b, err := ParseInstance(kind, data)
	if err != nil {
		return b, fmt.Errorf("%s: %w", p, err)
	}
	return b, nil
}
