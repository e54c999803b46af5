package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/registry/cachedimage"
	bkclient "github.com/moby/buildkit/client"
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer" // docker-container:// builders
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

// endpoint is the BuildKit the job's builder names, with its TLS.
type endpoint struct {
	addr string
	tls  buildx.TLS
	from string // how it was found, for messages
}

// jobBuilder finds the job's builder: the buildx instance BUILDX_BUILDER
// names in DOCKER_CONFIG's store (remote or docker-container), else
// BUILDKIT_HOST (with buildctl's BUILDKIT_TLS_DIR).
func jobBuilder(e Env) (endpoint, error) {
	name, dockerConfig := e.get(buildx.BuilderVar), e.get("DOCKER_CONFIG")
	if name != "" && dockerConfig != "" {
		b, err := buildx.ReadInstance(dockerConfig, "", name)
		switch {
		case err == nil && b.Driver == buildx.DriverRemote:
			return endpoint{addr: b.Nodes[0].Endpoint, tls: b.Nodes[0].TLS, from: "builder " + name}, nil
		case err == nil && b.Driver == buildx.DriverDockerContainer:
			return endpoint{addr: "docker-container://buildx_buildkit_" + b.Nodes[0].Name, from: "builder " + name}, nil
		case err == nil && e.get(buildx.HostVar) == "":
			return endpoint{}, fmt.Errorf("builder %q uses the %s driver, which has no BuildKit endpoint to build on "+
				"(dockhand cached-image needs a remote or docker-container builder, or BUILDKIT_HOST)", name, b.Driver)
		case err != nil && e.get(buildx.HostVar) == "":
			return endpoint{}, fmt.Errorf("the job's builder: %w", err)
		}
	}
	if host := e.get(buildx.HostVar); host != "" {
		ep := endpoint{addr: host, from: buildx.HostVar}
		if dir := e.get(buildx.TLSDirVar); dir != "" {
			ep.tls = buildx.TLS{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"),
				Key: filepath.Join(dir, "key.pem"), ServerName: e.get(buildx.TLSServerName)}
		}
		return ep, nil
	}
	return endpoint{}, errors.New("no builder: the job has neither BUILDX_BUILDER (with DOCKER_CONFIG) nor BUILDKIT_HOST")
}

func (ep endpoint) connect(ctx context.Context) (*bkclient.Client, error) {
	var opts []bkclient.ClientOpt
	if ep.tls.Enabled() {
		serverName := ep.tls.ServerName
		if serverName == "" {
			serverName = hostOf(ep.addr)
		}
		opts = append(opts, bkclient.WithServerConfig(serverName, ep.tls.CA))
		if ep.tls.Cert != "" {
			opts = append(opts, bkclient.WithCredentials(ep.tls.Cert, ep.tls.Key))
		}
	}
	c, err := bkclient.New(ctx, ep.addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to BuildKit at %s (%s): %w", ep.addr, ep.from, err)
	}
	return c, nil
}

func hostOf(addr string) string {
	a := addr
	if i := strings.Index(a, "://"); i >= 0 {
		a = a[i+3:]
	}
	if i := strings.LastIndex(a, ":"); i >= 0 {
		a = a[:i]
	}
	return a
}

// buildAndPush builds the Dockerfile with the dockerfile frontend on the
// job's builder and pushes IMAGE:TAG and IMAGE:latest, showing BuildKit's
// progress.
func buildAndPush(ctx context.Context, o *cachedimage.Options, e Env, image, tag string, creds *credentials) error {
	extra, err := cachedimage.ParseAdditional(o.AdditionalBuildArgs)
	if err != nil {
		return err
	}
	dockerfileDir, dockerfileName, contextDir, cleanup, err := sources(o, e.Dir)
	if err != nil {
		return err
	}
	defer cleanup()
	ep, err := jobBuilder(e)
	if err != nil {
		return err
	}
	c, err := ep.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	attrs := map[string]string{"filename": dockerfileName}
	target := o.Target
	if extra.Target != "" {
		target = extra.Target
	}
	if target != "" {
		attrs["target"] = target
	}
	for _, a := range append(append([]string{}, o.BuildArgs...), extra.BuildArgs...) {
		name, value, ok := strings.Cut(a, "=")
		if !ok {
			// docker's --build-arg NAME: the variable's value, or no arg.
			v, set := lookupEnv(e.Environ, name)
			if !set {
				continue
			}
			value = v
		}
		attrs["build-arg:"+name] = value
	}
	for _, l := range extra.Labels {
		k, v, _ := strings.Cut(l, "=")
		attrs["label:"+k] = v
	}
	if extra.NoCache {
		attrs["no-cache"] = ""
	}
	if extra.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
	if len(extra.Platforms) > 0 {
		attrs["platform"] = strings.Join(extra.Platforms, ",")
	}
	if extra.Network != "" {
		attrs["force-network-mode"] = extra.Network
	}
	if len(extra.AddHosts) > 0 {
		attrs["add-hosts"] = strings.Join(extra.AddHosts, ",")
	}

	ctxFS, err := fsutil.NewFS(contextDir)
	if err != nil {
		return fmt.Errorf("build context %s: %w", contextDir, err)
	}
	dfFS, err := fsutil.NewFS(dockerfileDir)
	if err != nil {
		return fmt.Errorf("dockerfile directory %s: %w", dockerfileDir, err)
	}
	attachables := []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(creds.cfg),
	})}
	store, err := newSecretStore(append(append([]cachedimage.Secret{}, o.Secrets...), extra.Secrets...), e)
	if err != nil {
		return err
	}
	attachables = append(attachables, secretsprovider.NewSecretProvider(store))
	if len(extra.SSH) > 0 {
		ssh, err := sshAgents(extra.SSH, e)
		if err != nil {
			return err
		}
		attachables = append(attachables, ssh)
	}
	exportAttrs := map[string]string{"name": image + ":" + tag + "," + image + ":latest", "push": "true"}
	if insecure, _ := plainHTTP(strings.SplitN(image, "/", 2)[0]); insecure {
		exportAttrs["registry.insecure"] = "true"
	}
	opt := bkclient.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		LocalMounts:   map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS},
		Exports:       []bkclient.ExportEntry{{Type: bkclient.ExporterImage, Attrs: exportAttrs}},
		Session:       attachables,
	}
	for _, cf := range extra.CacheFrom {
		opt.CacheImports = append(opt.CacheImports, cacheImport(cf))
	}

	mode := progressMode(o.Progress, e)
	display, err := progressui.NewDisplay(e.Stderr, mode)
	if err != nil {
		return fmt.Errorf("progress %s: %w", mode, err)
	}
	ch := make(chan *bkclient.SolveStatus)
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		_, err := c.Solve(ctx, nil, opt, ch)
		return err
	})
	eg.Go(func() error {
		// UpdateFrom drains ch until Solve closes it; its own context must
		// outlive a failed solve so the last lines are shown.
		_, err := display.UpdateFrom(context.WithoutCancel(ctx), ch)
		return err
	})
	if err := eg.Wait(); err != nil {
		return fmt.Errorf("building %s:%s on %s (%s): %w", image, tag, ep.addr, ep.from, err)
	}
	return nil
}

// progressMode: plain in a Buildkite job (its log is not a terminal one
// can redraw) or without a terminal; the live display on a terminal.
func progressMode(flag string, e Env) progressui.DisplayMode {
	switch flag {
	case "plain":
		return progressui.PlainMode
	case "tty":
		return progressui.TtyMode
	case "quiet":
		return progressui.QuietMode
	case "rawjson":
		return progressui.RawJSONMode
	}
	if e.get("BUILDKITE_JOB_ID") != "" || osFile(e.Stderr) == nil {
		return progressui.PlainMode
	}
	return progressui.AutoMode
}

// sources resolves the Dockerfile's directory and name and the context, as
// the plugin does: dockerfile-inline goes into a private temporary directory
// with the context "."; else the context is the Dockerfile's directory;
// the context option overrides both.
func sources(o *cachedimage.Options, dir string) (dfDir, dfName, contextDir string, cleanup func(), err error) {
	cleanup = func() {}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if o.DockerfileInline != "" {
		tmp, err := os.MkdirTemp("", "dockhand-dockerfile-")
		if err != nil {
			return "", "", "", cleanup, err
		}
		cleanup = func() { os.RemoveAll(tmp) }
		if err := os.WriteFile(filepath.Join(tmp, "Dockerfile"), []byte(o.DockerfileInline+"\n"), 0o600); err != nil {
			return "", "", "", cleanup, err
		}
		dfDir, dfName, contextDir = tmp, "Dockerfile", dir
	} else {
		df := o.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		dfDir, dfName = filepath.Dir(abs(df)), filepath.Base(df)
		contextDir = dfDir
	}
	if o.Context != "" {
		contextDir = abs(o.Context)
	}
	return dfDir, dfName, contextDir, cleanup, nil
}

func lookupEnv(environ []string, k string) (string, bool) {
	v, found := "", false
	for _, kv := range environ {
		if name, val, ok := strings.Cut(kv, "="); ok && name == k {
			v, found = val, true
		}
	}
	return v, found
}

// secretStore serves the build's secrets from the job's environment and
// files, read when the build asks for them.
type secretStore struct {
	e       Env
	secrets map[string]cachedimage.Secret
}

func newSecretStore(list []cachedimage.Secret, e Env) (*secretStore, error) {
	s := &secretStore{e: e, secrets: map[string]cachedimage.Secret{}}
	for _, sec := range list {
		s.secrets[sec.ID] = sec
	}
	return s, nil
}

func (s *secretStore) GetSecret(_ context.Context, id string) ([]byte, error) {
	sec, ok := s.secrets[id]
	if !ok {
		return nil, fmt.Errorf("secret %s: %w", id, secrets.ErrNotFound)
	}
	if sec.Src != "" {
		p := sec.Src
		if !filepath.IsAbs(p) {
			p = filepath.Join(s.e.Dir, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", id, err)
		}
		return data, nil
	}
	if v, ok := lookupEnv(s.e.Environ, sec.Env); ok {
		return []byte(v), nil
	}
	return nil, fmt.Errorf("secret %s: the variable %s is not set: %w", id, sec.Env, secrets.ErrNotFound)
}

// sshAgents forwards SSH agents: "default" is $SSH_AUTH_SOCK.
func sshAgents(specs []string, e Env) (session.Attachable, error) {
	var confs []sshprovider.AgentConfig
	for _, s := range specs {
		id, paths, _ := strings.Cut(s, "=")
		c := sshprovider.AgentConfig{ID: id}
		if paths != "" {
			c.Paths = strings.Split(paths, ",")
		} else if sock := e.get("SSH_AUTH_SOCK"); sock != "" {
			c.Paths = []string{sock}
		}
		confs = append(confs, c)
	}
	p, err := sshprovider.NewSSHAgentProvider(confs)
	if err != nil {
		return nil, fmt.Errorf("additional-build-args --ssh: %w", err)
	}
	return p, nil
}

// cacheImport turns a --cache-from value (a ref, or type=…,ref=… CSV) into
// a cache import.
func cacheImport(v string) bkclient.CacheOptionsEntry {
	if !strings.Contains(v, "=") {
		return bkclient.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{"ref": v}}
	}
	e := bkclient.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{}}
	for _, f := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(f, "=")
		if k == "type" {
			e.Type = val
			continue
		}
		e.Attrs[k] = val
	}
	return e
}
