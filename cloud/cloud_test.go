package cloud

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/internal/proc"
)

// fake writes a stand-in dockhand-cloud: a shell script.
func fake(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), Binary)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunSpeaksJSON: the command name is the one argument, the request is
// JSON on stdin, the reply JSON on stdout; nothing else crosses.
func TestRunSpeaksJSON(t *testing.T) {
	dir := t.TempDir()
	cloud := fake(t, `echo "$#:$1" > `+dir+`/argv; cat > `+dir+`/stdin; echo "$DOCKHAND_TEST" > `+dir+`/env
echo '{"created":true}'
`)
	var reply ECRCacheRepoReply
	err := Run(t.Context(), cloud, []string{"DOCKHAND_TEST=x"}, ECRCacheRepo,
		ECRCacheRepoRequest{Repository: "1.dkr.ecr.r.amazonaws.com/c", MaxAgeDays: 7}, &reply)
	if err != nil || !reply.Created {
		t.Fatalf("Run = %+v, %v", reply, err)
	}
	for file, want := range map[string]string{
		"argv":  "1:ecr-cache-repo\n",
		"stdin": `{"repository":"1.dkr.ecr.r.amazonaws.com/c","max_age_days":7}`,
		"env":   "x\n",
	} {
		if got, _ := os.ReadFile(filepath.Join(dir, file)); string(got) != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

// TestRunErrors: every failure is an *Error, whose message is the child's
// last stderr line when it printed one.
func TestRunErrors(t *testing.T) {
	for _, c := range []struct {
		name, script string
		cloud        string // instead of a script
		want         string
	}{
		{name: "the child's last line", script: "echo starting >&2; echo 'dockhand probe: no targets' >&2; exit 1",
			want: "dockhand probe: no targets"},
		{name: "a long line is cut", script: "printf '%0400d\\n' 0 >&2; exit 1", want: strings.Repeat("0", 300) + "…"},
		{name: "silent failure", script: "exit 3", want: "dockhand-cloud probe: exit status 3"},
		{name: "bad answer", script: "echo not-json", want: "dockhand-cloud probe: bad answer: "},
		{name: "missing", cloud: "/nonexistent/dockhand-cloud", want: "/nonexistent/dockhand-cloud not found (it is installed next to dockhand)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cloud := c.cloud
			if cloud == "" {
				cloud = fake(t, c.script+"\n")
			}
			var resp struct{}
			err := Run(t.Context(), cloud, nil, Probe, struct{}{}, &resp)
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("Run = %v (%T), want an *Error saying %q", err, err, c.want)
			}
		})
	}
}

// TestRunIsBoundedByItsContext: a child that hangs, with a grandchild
// holding its stderr open, costs its context and proc.WaitDelay at most.
func TestRunIsBoundedByItsContext(t *testing.T) {
	cloud := fake(t, "sleep 30 & sleep 30\n")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	var resp struct{}
	err := Run(ctx, cloud, nil, History, struct{}{}, &resp)
	if took := time.Since(start); err == nil || took > 200*time.Millisecond+proc.WaitDelay+time.Second {
		t.Fatalf("Run = %v after %s; want an error within the context and WaitDelay", err, took)
	}
}

// TestServe: the other end of Run's wire format.
func TestServe(t *testing.T) {
	var out bytes.Buffer
	err := Serve(strings.NewReader(`{"registry":"public.ecr.aws","timeout_ns":5}`), &out,
		func(req ECRTokenRequest) (ECRCacheRepoReply, error) {
			if req.Registry != "public.ecr.aws" || req.Timeout != 5 {
				t.Errorf("request %+v", req)
			}
			return ECRCacheRepoReply{Created: true}, nil
		})
	if err != nil || out.String() != "{\"created\":true}\n" {
		t.Errorf("Serve = %q, %v", out.String(), err)
	}
	err = Serve(strings.NewReader("{"), &out, func(ECRTokenRequest) (ECRCacheRepoReply, error) {
		t.Error("handler called on a bad request")
		return ECRCacheRepoReply{}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "reading the request on stdin") {
		t.Errorf("bad request: %v", err)
	}
	want := errors.New("AccessDenied")
	if err := Serve(strings.NewReader("{}"), &out, func(ECRTokenRequest) (ECRCacheRepoReply, error) {
		return ECRCacheRepoReply{}, want
	}); !errors.Is(err, want) {
		t.Errorf("handler error: %v", err)
	}
}
