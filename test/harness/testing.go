package harness

import (
	"os"
	"testing"
)

// Options choose what Start brings up.
type Options struct {
	RegistryUser, RegistryPassword string // require auth on the registry
	S3Bucket                       string // also start the S3 server with this bucket
	NoBaseImage                    bool   // skip pushing the busybox base image
}

// Env is a started kit: a registry, a buildkitd that trusts it over plain
// HTTP, optionally an S3 server, and the busybox base image in the registry.
type Env struct {
	*Kit
	Registry  *Registry
	Buildkitd *Buildkitd
	S3        *S3
	BaseImage string // REGISTRY/dockhand/busybox:latest
}

// Start brings the kit up for one test and stops it when the test ends; the
// test holds its Slot from then on. Any failure, a missing component
// included, fails the test: it never skips.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	Slot(t)
	dir := t.TempDir()
	k, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("component logs:\n%s", k.Logs())
		}
		if err := k.Close(); err != nil {
			t.Errorf("stopping the kit: %v", err)
		}
	})
	e, err := k.StartEnv(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// StartEnv brings up in k what o chooses; Start is StartEnv for one test,
// and benchmarks and the demo call it themselves.
func (k *Kit) StartEnv(o Options) (*Env, error) {
	e := &Env{Kit: k}
	var err error
	if e.Registry, err = k.StartRegistry(RegistryOptions{User: o.RegistryUser, Password: o.RegistryPassword}); err != nil {
		return nil, err
	}
	if e.Buildkitd, err = k.StartBuildkitd("buildkitd", e.Registry.Host); err != nil {
		return nil, err
	}
	if o.S3Bucket != "" {
		if e.S3, err = k.StartS3(o.S3Bucket); err != nil {
			return nil, err
		}
	}
	if !o.NoBaseImage {
		if e.BaseImage, err = k.PushBaseImage(e.Buildkitd, e.Registry); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Main runs a test binary's tests and removes the dockhand Dockhand built
// for them: a package's TestMain is `func TestMain(m *testing.M) { harness.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	CleanupDockhand()
	os.Exit(code)
}

// DockhandBin is Dockhand for a test, which fails when it is not there; the
// test holds its Slot from then on.
func DockhandBin(t testing.TB) string {
	t.Helper()
	Slot(t)
	bin, err := Dockhand()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// MustRepoRoot is RepoRoot for a test, which fails when it is not found.
func MustRepoRoot(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
