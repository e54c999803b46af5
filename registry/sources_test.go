package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/dockhand-ci/dockhand/internal/joblog"
)

func TestStaticCredentials(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "ghcr.json")
	os.WriteFile(good, []byte(`{"username":"bot","password":"static-pw-123"}`), 0o600)
	open := filepath.Join(dir, "open.json")
	os.WriteFile(open, []byte(`{"username":"bot","password":"static-pw-123"}`), 0o644)
	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, []byte(`username=bot static-pw-123`), 0o600)
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, []byte(`{"username":"bot"}`), 0o600)
	var stderr bytes.Buffer
	h := New(Options{Log: joblog.New(&stderr), Settings: Settings{Static: map[string]string{
		"ghcr.io": good, "open.example": open, "broken.example": broken, "empty.example": empty,
		"missing.example": filepath.Join(dir, "nope.json"),
	}}})
	if u, s, err := h.Get("https://ghcr.io"); err != nil || u != "bot" || s != "static-pw-123" {
		t.Errorf("Get(ghcr.io) = %q %q %v", u, s, err)
	}
	for host, want := range map[string]string{
		"open.example":    "readable by others (mode 0644); chmod 600 it",
		"broken.example":  "is not JSON",
		"empty.example":   "has no username or no password",
		"missing.example": "no such file",
	} {
		stderr.Reset()
		if _, _, err := h.Get(host); err == nil || err.Error() != "credentials not found in native keychain" {
			t.Errorf("Get(%s) = %v, want not found", host, err)
		}
		if !strings.Contains(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("Get(%s) stderr = %q, want one line with %q", host, stderr.String(), want)
		}
		if strings.Contains(stderr.String(), "static-pw-123") {
			t.Errorf("Get(%s) printed the password", host)
		}
	}
}

// fakeNSC writes a docker-credential-nsc double speaking the credential
// helper protocol: it serves nscr.io and answers not found for the rest,
// on stderr between "=" frames as the real helper prints every error.
func fakeNSC(t *testing.T) string {
	dir := t.TempDir()
	script := `#!/bin/sh
fail() { printf '\n====================\nFailed: %s\n====================\n' "$1" >&2; exit 1; }
[ "$1" = get ] || fail "not supported"
host=$(cat)
echo "$host" >> "$(dirname "$0")/asked"
echo "${NSC_TOKEN_FILE:-none}" >> "$(dirname "$0")/token-files"
case "$host" in
  nscr.io|https://nscr.io) printf '{"ServerURL":"%s","Username":"token","Secret":"nsc-token-abc"}\n' "$host" ;;
  broken.nscr.io) fail "failed to get nscloud registries: rpc error: unauthenticated" ;;
  *) fail "credentials not found in native keychain" ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, NSCHelper), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNamespaceDelegation(t *testing.T) {
	dir := fakeNSC(t)
	var stderr bytes.Buffer
	h := New(Options{Log: joblog.New(&stderr), Env: agentenv.FromMap(map[string]string{"PATH": dir + ":/usr/bin:/bin"})})
	if u, s, err := h.Get("nscr.io"); err != nil || u != "token" || s != "nsc-token-abc" {
		t.Errorf("Get(nscr.io) = %q %q %v", u, s, err)
	}
	if _, _, err := h.Get("eu.nscr.io"); err == nil || stderr.Len() != 0 {
		t.Errorf("nsc's not-found: %v, stderr %q; want not found, silently", err, stderr.String())
	}
	if _, _, err := h.Get("broken.nscr.io"); err == nil || !strings.Contains(stderr.String(), "unauthenticated") {
		t.Errorf("nsc's failure: %v, stderr %q", err, stderr.String())
	}
	asked, _ := os.ReadFile(filepath.Join(dir, "asked"))
	if string(asked) != "nscr.io\neu.nscr.io\nbroken.nscr.io\n" {
		t.Errorf("docker-credential-nsc was asked %q", asked)
	}
	// Not a Namespace host: nsc is never asked.
	h.Get("ghcr.io")
	if again, _ := os.ReadFile(filepath.Join(dir, "asked")); !bytes.Equal(again, asked) {
		t.Errorf("nsc was asked about ghcr.io")
	}
	// No docker-credential-nsc: not found and one line.
	stderr.Reset()
	h = New(Options{Log: joblog.New(&stderr), Env: agentenv.FromMap(map[string]string{"PATH": "/usr/bin:/bin"})})
	if _, _, err := h.Get("nscr.io"); err == nil || !strings.Contains(stderr.String(), "docker-credential-nsc is not on PATH") {
		t.Errorf("without nsc: %v, %q", err, stderr.String())
	}
}

// The job's Namespace token reaches docker-credential-nsc from the job
// state, not the job's environment; a NSC_TOKEN_FILE the job sets itself
// wins.
func TestNamespaceTokenFile(t *testing.T) {
	dir := fakeNSC(t)
	settings := Settings{NSCTokenFile: "/job/nsc/config/ns/token.json"}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PATH": dir + ":/usr/bin:/bin"}, "/job/nsc/config/ns/token.json"},
		{map[string]string{"PATH": dir + ":/usr/bin:/bin", NSCTokenFileVar: "/step/own.json"}, "/step/own.json"},
	} {
		os.Remove(filepath.Join(dir, "token-files"))
		h := New(Options{Settings: settings, Env: agentenv.FromMap(c.env)})
		if _, _, err := h.Get("nscr.io"); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "token-files")); strings.TrimSpace(string(got)) != c.want {
			t.Errorf("env %v: docker-credential-nsc got NSC_TOKEN_FILE=%q, want %q", c.env, got, c.want)
		}
	}
}

func TestPackagesOutsideAJob(t *testing.T) {
	var stderr bytes.Buffer
	h := New(Options{Log: joblog.New(&stderr), Settings: Settings{Packages: []string{"acme/images"}}})
	if _, _, err := h.Get("packages.buildkite.com"); err == nil || !strings.Contains(stderr.String(), "only be requested inside a Buildkite job") {
		t.Errorf("outside a job: %v, %q", err, stderr.String())
	}
}

func TestJWTExpiry(t *testing.T) {
	for tok, want := range map[string]int64{
		"eyJhbGciOiJub25lIn0.eyJleHAiOjE4OTM0NTYwMDB9.c2ln": 1893456000,
		"eyJhbGciOiJub25lIn0.eyJleHAiOiJzb29uIn0.c2ln":      0,
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln":          0,
		"not-a-jwt": 0,
		"a.!!!.c":   0,
	} {
		got := jwtExpiry(tok)
		if (want == 0 && !got.IsZero()) || (want != 0 && got.Unix() != want) {
			t.Errorf("jwtExpiry(%q) = %v, want %d", tok, got, want)
		}
	}
}

// jobAPI is a Job API double on a unix socket, answering redactions like
// the agent's (POST /api/current-job/v0/redactions, bearer token).
type jobAPI struct {
	sock, token string
	mu          sync.Mutex
	redacted    []string
}

func startJobAPI(t *testing.T) *jobAPI {
	dir, err := os.MkdirTemp("", "jobapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	j := &jobAPI{sock: filepath.Join(dir, "job.sock"), token: "job-api-token"}
	ln, err := net.Listen("unix", j.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+j.token {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid Authorization header"}`)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/api/current-job/v0/redactions" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"not found"}`)
			return
		}
		var req struct {
			Redact string `json:"redact"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		j.mu.Lock()
		j.redacted = append(j.redacted, req.Redact)
		j.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"redacted": req.Redact})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return j
}

func (j *jobAPI) got() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.redacted...)
}

func TestRedactionThroughTheJobAPI(t *testing.T) {
	api := startJobAPI(t)
	jobDir := t.TempDir()
	static := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(static, []byte(`{"username":"u","password":"static-secret-1"}`), 0o600)
	env := agentenv.FromMap(map[string]string{jobAPISocketVar: api.sock, jobAPITokenVar: api.token})
	var stderr bytes.Buffer
	h := New(Options{JobDir: jobDir, Env: env, Log: joblog.New(&stderr), Settings: Settings{Static: map[string]string{"r.example": static}}})
	for range 3 {
		if _, s, err := h.Get("r.example"); err != nil || s != "static-secret-1" {
			t.Fatalf("get = %q %v", s, err)
		}
	}
	if err := h.Add(&credentials.Credentials{ServerURL: "l.example", Username: "u", Secret: "login-secret-2"}); err != nil {
		t.Fatal(err)
	}
	// The job's own login is served, and was redacted when stored.
	if _, s, _ := h.Get("l.example"); s != "login-secret-2" {
		t.Errorf("login get = %q", s)
	}
	if got := api.got(); len(got) != 2 || got[0] != "static-secret-1" || got[1] != "login-secret-2" {
		t.Errorf("redactions = %q, want each secret once", got)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q", stderr.String())
	}
	data, _ := os.ReadFile(filepath.Join(jobDir, redactedFile))
	if strings.Contains(string(data), "secret") {
		t.Errorf("the redaction record holds a secret: %q", data)
	}
	// A refused call costs one line, and the secret is still served.
	stderr.Reset()
	bad := New(Options{JobDir: t.TempDir(), Log: joblog.New(&stderr), Settings: Settings{Static: map[string]string{"r.example": static}},
		Env: agentenv.FromMap(map[string]string{jobAPISocketVar: api.sock, jobAPITokenVar: "wrong"})})
	if _, s, _ := bad.Get("r.example"); s != "static-secret-1" ||
		!strings.Contains(stderr.String(), "HTTP 401: invalid Authorization header") {
		t.Errorf("refused redaction: %q, stderr %q", s, stderr.String())
	}
	// No Job API (outside a job): nothing is tried.
	stderr.Reset()
	outside := New(Options{Log: joblog.New(&stderr), Env: env, Settings: Settings{Static: map[string]string{"r.example": static}}})
	outside.Get("r.example")
	if len(api.got()) != 2 || stderr.Len() != 0 {
		t.Errorf("outside a job: redactions %q, stderr %q", api.got(), stderr.String())
	}
}

func TestUnixHTTPTimesOut(t *testing.T) {
	dir, _ := os.MkdirTemp("", "silent")
	defer os.RemoveAll(dir)
	ln, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // reads, never answers
		}
	}()
	start := time.Now()
	_, _, err = unixHTTP(filepath.Join(dir, "s.sock"), []byte("POST / HTTP/1.1\r\n\r\n"), 200*time.Millisecond)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("a silent server: %v after %s", err, time.Since(start))
	}
}

// TestPackagesTokenLivesFiveMinutes: Buildkite's API gives an OIDC token
// requested without --lifetime (as the Packages route requests it) five
// minutes. The job keeps it while more than two minutes are left: a get
// 2m59s after the request is served from the job's cache, one at 3m01s
// asks the agent for a new token. (The stand-in agent stamps each token
// with the test's clock plus the API's default lifetime.)
func TestPackagesTokenLivesFiveMinutes(t *testing.T) {
	dir := t.TempDir()
	clock := time.Now().Truncate(time.Second)
	stamp := filepath.Join(dir, "exp")
	agent := "#!/bin/sh\necho \"$*\" >> " + filepath.Join(dir, "calls") + "\nexp=$(cat " + stamp + ")\n" +
		"printf 'e30.%s.sig\\n' \"$(printf '{\"exp\":%s}' \"$exp\" | base64 | tr -d '=\\n' | tr '+/' '-_')\"\n"
	if err := os.WriteFile(filepath.Join(dir, "buildkite-agent"), []byte(agent), 0o700); err != nil {
		t.Fatal(err)
	}
	get := func() (string, error) {
		os.WriteFile(stamp, []byte(fmt.Sprint(clock.Add(5*time.Minute).Unix())), 0o600)
		var stderr bytes.Buffer
		h := New(Options{Log: joblog.New(&stderr), JobDir: dir, Now: func() time.Time { return clock },
			Settings: Settings{Packages: []string{"acme/images"}},
			Env:      agentenv.FromMap(map[string]string{"PATH": dir + ":/usr/bin:/bin", "BUILDKITE_JOB_ID": "j1"})})
		_, secret, err := h.Get("packages.buildkite.com")
		return secret, err
	}
	calls := func() int {
		data, _ := os.ReadFile(filepath.Join(dir, "calls"))
		return strings.Count(string(data), "\n")
	}
	start := clock
	first, err := get()
	if err != nil || calls() != 1 || jwtExpiry(first) != start.Add(5*time.Minute) {
		t.Fatalf("first get: %q, %v after %d calls", first, err, calls())
	}
	clock = start.Add(2*time.Minute + 59*time.Second)
	if again, err := get(); err != nil || again != first || calls() != 1 {
		t.Errorf("at 2m59s: %v, same token %v, %d agent calls; want the job's cached token", err, again == first, calls())
	}
	clock = start.Add(3*time.Minute + time.Second)
	if renewed, err := get(); err != nil || renewed == first || calls() != 2 {
		t.Errorf("at 3m01s: %v, new token %v, %d agent calls; want a new token from the agent", err, renewed != first, calls())
	}
}
