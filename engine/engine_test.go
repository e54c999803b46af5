package engine

import (
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

func TestImageStoreOf(t *testing.T) {
	for _, tt := range []struct{ name, info, want string }{
		{"containerd store (Docker 28, features.containerd-snapshotter)",
			`{"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}`, StoreContainerd},
		{"classic overlay2 (20.10 and 25+ by default)",
			`{"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"],["Supports d_type","true"],["Native Overlay Diff","true"]]}`, StoreClassic},
		{"classic vfs", `{"Driver":"vfs","DriverStatus":null}`, StoreClassic},
		{"another driver-type", `{"Driver":"x","DriverStatus":[["driver-type","something.else"]]}`, StoreClassic},
		{"odd DriverStatus rows", `{"Driver":"overlayfs","DriverStatus":[["driver-type"],[]]}`, StoreClassic},
		{"not an engine's info", `{"message":"page not found"}`, ""},
		{"not JSON", `<html>`, ""},
		{"empty", ``, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ImageStoreOf([]byte(tt.info)); got != tt.want {
				t.Errorf("ImageStoreOf(%s) = %q, want %q", tt.info, got, tt.want)
			}
		})
	}
}

// TestImageStore: the engine at DOCKER_HOST is asked for the default
// builder only, not when DOCKER_CONTEXT points elsewhere, and an engine
// that does not answer in time is "" (read-only), not a wait.
func TestImageStore(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.URL.Path != "/info" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}`))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	host := "unix://" + sock
	for _, tt := range []struct {
		name, builder string
		lookup        func(string) string
		want          string
	}{
		{"default builder", "default", env("DOCKER_HOST", host), StoreContainerd},
		{"Default, any case", "Default", env("DOCKER_HOST", host), StoreContainerd},
		{"another builder", "kit", env("DOCKER_HOST", host), ""},
		{"another docker context", "default", env("DOCKER_HOST", host, "DOCKER_CONTEXT", "remote"), ""},
		{"no engine there", "default", env("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "none.sock")), ""},
		{"an ssh host", "default", env("DOCKER_HOST", "ssh://h"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ImageStore(t.Context(), tt.lookup, tt.builder, 2*time.Second); got != tt.want {
				t.Errorf("ImageStore = %q, want %q", got, tt.want)
			}
		})
	}
	if calls != 2 {
		t.Errorf("the engine was asked %d times, want 2 (the default builder only)", calls)
	}

	// A wedged engine: accepts, never answers.
	wedged := filepath.Join(t.TempDir(), "w.sock")
	wl, err := net.Listen("unix", wedged)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wl.Close() })
	start := time.Now()
	if got := ImageStore(t.Context(), env("DOCKER_HOST", "unix://"+wedged), "default", 200*time.Millisecond); got != "" {
		t.Errorf("wedged engine: %q, want \"\"", got)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a wedged engine held the build %s with a 200ms timeout", took)
	}
}
