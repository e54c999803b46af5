package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// FuzzHelperStdin feeds arbitrary stdin to every action of the helper. It
// must never panic; get answers either credentials or one of the
// protocol's standard errors; what store accepted, get gives back; nothing
// it writes is more readable than 0600.
func FuzzHelperStdin(f *testing.F) {
	for _, seed := range []struct {
		action string
		input  string
	}{
		{"get", "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{"get", "https://index.docker.io/v1/"},
		{"get", ""},
		{"get", "\n\n"},
		{"get", "static.example"},
		{"get", "alias.example:5000"},
		{"get", "nscr.io"},
		{"get", "packages.buildkite.com/acme/images"},
		{"store", `{"ServerURL":"r.example:5000","Username":"u","Secret":"p"}`},
		{"store", `{"ServerURL":"","Username":"u","Secret":"p"}`},
		{"store", `{"ServerURL":"x","Username":"","Secret":"p"}`},
		{"store", `{"ServerURL":"https://r.example/v2/","Username":"<token>","Secret":"idtoken"}`},
		{"store", `not json`},
		{"store", `{"ServerURL":123}`},
		{"erase", "r.example:5000"},
		{"erase", ""},
		{"list", "unused"},
		{"version", ""},
		{"bogus", "x"},
	} {
		f.Add(seed.action, []byte(seed.input))
	}
	root := f.TempDir()
	jobDir, stateDir := filepath.Join(root, "job"), filepath.Join(root, "state")
	os.MkdirAll(jobDir, 0o700)
	static := filepath.Join(root, "static.json")
	os.WriteFile(static, []byte(`{"username":"su","password":"sp"}`), 0o600)
	fetch := func(_ context.Context, reg hosts.Registry) (ECRTokenReply, error) {
		if reg.Region == "eu-west-1" {
			return ECRTokenReply{}, errors.New("AccessDeniedException")
		}
		return ECRTokenReply{Username: "AWS", Secret: "ecr-" + reg.Account, ExpiresAt: time.Now().Add(time.Hour), KeyID: "k"}, nil
	}
	var stderr bytes.Buffer
	h := New(Options{
		JobDir: jobDir, StateDir: stateDir, Log: joblog.New(&stderr), FetchECR: fetch, LockWait: time.Second, Timeout: time.Second,
		Settings: Settings{
			Static:     map[string]string{"static.example": static},
			ECRAliases: map[string]string{"alias.example:5000": "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
			Packages:   []string{"acme/images"},
		},
	})
	f.Fuzz(func(t *testing.T, action string, input []byte) {
		var out bytes.Buffer
		err := credentials.HandleCommand(h, action, bytes.NewReader(input), &out)
		switch action {
		case "get":
			if err != nil {
				msg := err.Error()
				if !credentials.IsCredentialsMissingServerURLMessage(msg) && !credentials.IsErrCredentialsNotFoundMessage(msg) {
					t.Fatalf("get %q: non-standard error %q", input, msg)
				}
				return
			}
			var c credentials.Credentials
			if json.Unmarshal(out.Bytes(), &c) != nil || c.Secret == "" {
				t.Fatalf("get %q answered %q", input, out.String())
			}
		case "store":
			var c credentials.Credentials
			if err != nil || json.Unmarshal(input, &c) != nil {
				return
			}
			// What was stored is served back, ahead of any other source.
			if strings.TrimSpace(c.ServerURL) == "" || Key(c.ServerURL) == "" {
				return
			}
			u, s, gerr := h.Get(c.ServerURL)
			if gerr != nil || u != c.Username || s != c.Secret {
				t.Fatalf("stored %+v, got back %q %q %v", c, u, s, gerr)
			}
		}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || p == static {
				return nil
			}
			if info, err := d.Info(); err == nil && info.Mode().Perm()&0o077 != 0 {
				t.Fatalf("%s has mode %v", p, info.Mode())
			}
			return nil
		})
	})
}
