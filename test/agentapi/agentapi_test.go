package agentapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// --- helpers ---

func startServer(t *testing.T) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			for _, r := range s.Requests() {
				fmt.Fprintf(&b, "  %d %s %s?%s auth=%q\n", r.Status, r.Method, r.Path, r.Query, r.Auth)
			}
			t.Logf("requests:\n%s", b.String())
		}
		s.Close()
	})
	return s
}

func addJob(s *Server, command string) string {
	id := NewJobID()
	s.AddJob(Job{ID: id, Env: MinimalEnv(id, command)})
	return id
}

func hasLine(log, line string) bool {
	return slices.Contains(strings.Split(Plain(log), "\n"), line)
}

// requireOrder checks that the requests contain each "METHOD path" in
// turn (as a subsequence).
func requireOrder(t *testing.T, reqs []Request, want ...string) {
	t.Helper()
	i := 0
	for _, r := range reqs {
		if i < len(want) && r.Method+" "+r.Path == want[i] {
			i++
		}
	}
	if i < len(want) {
		var got []string
		for _, r := range reqs {
			got = append(got, r.Method+" "+r.Path)
		}
		t.Fatalf("requests lack %q in order (matched up to %d)\ngot: %s", want, i, strings.Join(got, "\n     "))
	}
}

// runJob runs one job to completion with an --acquire-job agent and returns
// the finish body, the log and the agent's exit code.
func runJob(t *testing.T, s *Server, id string, extra ...string) (Finish, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	p := harness.StartAgent(t, s.AgentArgs(t.TempDir(), id, extra...))
	f, err := s.WaitFinish(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	code, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return f, s.Log(id), code
}

// --- tests with the real agent ---

func TestEchoJob(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name  string
		extra []string
	}{
		{"pty", nil},
		{"no-pty", []string{"--no-pty", "--no-ansi-timestamps"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t)
			id := addJob(s, "echo hello-from-job")
			f, log, code := runJob(t, s, id, mode.extra...)
			if f.ExitStatus != "0" || f.Signal != "" || code != 0 {
				t.Errorf("finish %s, agent exit %d; want exit_status 0 and agent exit 0", f.Raw, code)
			}
			if !hasLine(log, "hello-from-job") {
				t.Errorf("log has no line hello-from-job:\n%q", log)
			}
			if mode.name == "no-pty" && !strings.Contains(log, "\nhello-from-job\n") {
				t.Errorf("with --no-pty --no-ansi-timestamps the raw log should hold the plain line:\n%q", log)
			}
			job := "/v3/jobs/" + id
			requireOrder(t, s.Requests(),
				"POST /v3/register", "POST /v3/connect", "PUT "+job+"/acquire", "PUT "+job+"/start",
				"POST "+job+"/chunks", "PUT "+job+"/finish", "POST /v3/disconnect")
			for _, r := range s.Requests() {
				if r.Status == http.StatusUnauthorized || r.Status == http.StatusNotFound {
					t.Errorf("unexpected %d for %s %s", r.Status, r.Method, r.Path)
				}
				if strings.HasPrefix(r.Path, job+"/") && !strings.HasSuffix(r.Path, "/acquire") && r.Auth != "Token job-token-"+id[:8] {
					t.Errorf("%s %s sent auth %q, want the job token", r.Method, r.Path, r.Auth)
				}
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := addJob(s, "exit 3")
	f, _, code := runJob(t, s, id)
	if f.ExitStatus != "3" {
		t.Errorf("finish %s, want exit_status 3", f.Raw)
	}
	if code != 3 {
		t.Errorf("agent exited %d, want 3 (--reflect-exit-status)", code)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	// The bootstrap echoes the command into the log ("$ echo ..."), so the
	// markers are split with quotes there and whole only in the output.
	id := addJob(s, `echo RE""ADY; sleep 30; echo NE""VER`)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	begin := time.Now()
	p := harness.StartAgent(t, s.AgentArgs(t.TempDir(), id))
	if err := s.WaitLog(ctx, id, "\nREADY"); err != nil {
		t.Fatal(err)
	}
	s.Cancel(id)
	f, err := s.WaitFinish(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if f.ExitStatus != "-1" || f.Signal != "SIGTERM" || f.SignalReason != "cancel" {
		t.Errorf("finish %s, want exit_status -1, signal SIGTERM, signal_reason cancel", f.Raw)
	}
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 15*time.Second {
		t.Errorf("the canceled job took %v", d)
	}
	if log := s.Log(id); strings.Contains(Plain(log), "NEVER") {
		t.Errorf("the job ran on after the cancel:\n%q", log)
	}
	var polled bool
	for _, r := range s.Requests() {
		polled = polled || r.Method == "GET" && r.Path == "/v3/jobs/"+id
	}
	if !polled {
		t.Error("the agent never polled GET /v3/jobs/{id}")
	}
}

func TestOIDCFromJob(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const aud = "https://packages.buildkite.com/org/reg"
	id := addJob(s, "buildkite-agent oidc request-token --audience "+aud)
	f, log, _ := runJob(t, s, id)
	if f.ExitStatus != "0" {
		t.Errorf("finish %s, want exit_status 0; log:\n%s", f.Raw, Plain(log))
	}
	if got := s.OIDCAudiences(); !slices.Equal(got, []string{aud}) {
		t.Errorf("OIDC audiences %q, want [%q]", got, aud)
	}
}

// TestOIDCLifetime: the real agent's --lifetime reaches the token's exp, as
// Buildkite's API honours it; without one the token lives the API's default
// five minutes; a negative one is refused. Each token is issued at the
// request (iat is now), so a short lifetime is short.
func TestOIDCLifetime(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const aud = "federation.namespaceapis.com"
	for _, tc := range []struct {
		flag string
		want int64
	}{
		{" --lifetime 120", 120},
		{"", int64(OIDCDefaultLifetime / time.Second)},
		{" --lifetime 0", int64(OIDCDefaultLifetime / time.Second)},
	} {
		before := time.Now().Unix()
		id := addJob(s, "buildkite-agent oidc request-token --audience "+aud+tc.flag)
		if f, log, _ := runJob(t, s, id); f.ExitStatus != "0" {
			t.Fatalf("%q: finish %s; log:\n%s", tc.flag, f.Raw, Plain(log))
		}
		parts := strings.Split(s.OIDCToken(id, aud), ".")
		if len(parts) != 3 {
			t.Fatalf("%q: token %q", tc.flag, s.OIDCToken(id, aud))
		}
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims struct{ Iat, Exp int64 }
		if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp-claims.Iat != tc.want || claims.Iat < before {
			t.Errorf("%q: iat %d exp %d (%v), want a lifetime of %d s from now (%d)", tc.flag, claims.Iat, claims.Exp, err, tc.want, before)
		}
	}
	id := addJob(s, "buildkite-agent oidc request-token --audience "+aud+" --lifetime -5")
	if f, _, _ := runJob(t, s, id); f.ExitStatus == "0" || s.OIDCToken(id, aud) != "" {
		t.Errorf("a negative lifetime: finish %s, want refused", f.Raw)
	}
}

func TestPollMode(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := addJob(s, "echo polled-job")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	p := harness.StartAgent(t, s.PollAgentArgs(t.TempDir(), "poller", "--no-pty"))
	f, err := s.WaitFinish(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if f.ExitStatus != "0" || !hasLine(s.Log(id), "polled-job") {
		t.Errorf("finish %s; log:\n%s", f.Raw, s.PlainLog(id))
	}
	if code, err := p.Wait(ctx); err != nil || code != 0 {
		t.Errorf("agent exit %d, %v", code, err)
	}
	job := "/v3/jobs/" + id
	requireOrder(t, s.Requests(), "POST /v3/register", "POST /v3/connect", "GET /v3/ping",
		"PUT "+job+"/accept", "PUT "+job+"/start", "PUT "+job+"/finish", "GET /v3/ping", "POST /v3/disconnect")
}

func TestEightAgentsOneServer(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	type run struct {
		id string
		p  *harness.Agent
	}
	var runs []run
	for i := range 8 {
		id := addJob(s, fmt.Sprintf("echo agent-%d-out; exit %d", i, i))
		runs = append(runs, run{id, harness.StartAgent(t, s.AgentArgs(t.TempDir(), id, "--no-pty"))})
	}
	for i, r := range runs {
		f, err := s.WaitFinish(ctx, r.id)
		if err != nil {
			t.Fatal(err)
		}
		if f.ExitStatus != strconv.Itoa(i) || !hasLine(s.Log(r.id), fmt.Sprintf("agent-%d-out", i)) {
			t.Errorf("job %d: finish %s, log:\n%s", i, f.Raw, s.PlainLog(r.id))
		}
		if code, err := r.p.Wait(ctx); err != nil || code != i {
			t.Errorf("agent %d exit %d, %v", i, code, err)
		}
	}
}

// --- protocol checks without the agent ---

func call(t *testing.T, method, url, tok string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Token "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestTokensAndEndpoints(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := addJob(s, "true")
	e := s.Endpoint
	jobTok := "job-token-" + id[:8]

	if c, _ := call(t, "POST", e+"/register", "wrong", map[string]string{"name": "x"}); c != 401 {
		t.Errorf("register with a wrong token: %d, want 401", c)
	}
	c, b := call(t, "POST", e+"/register", s.RegistrationToken, map[string]any{"name": "x", "ignore_in_dispatches": true})
	var reg struct {
		AccessToken  string `json:"access_token"`
		PingInterval int    `json:"ping_interval"`
	}
	if json.Unmarshal(b, &reg); c != 200 || reg.AccessToken == "" || reg.PingInterval != 1 {
		t.Fatalf("register: %d %s", c, b)
	}
	agentTok := reg.AccessToken
	for _, r := range []struct{ method, path, tok string }{
		{"POST", "/connect", s.RegistrationToken},
		{"GET", "/ping", jobTok},
		{"POST", "/heartbeat", ""},
		{"PUT", "/jobs/" + id + "/acquire", jobTok},
	} {
		if c, _ := call(t, r.method, e+r.path, r.tok, nil); c != 401 {
			t.Errorf("%s %s with token %q: %d, want 401", r.method, r.path, r.tok, c)
		}
	}
	if c, b := call(t, "GET", e+"/ping", agentTok, nil); c != 200 || string(b) != "{}" {
		t.Errorf("ping of an --acquire-job agent: %d %s, want {}", c, b)
	}
	if c, _ := call(t, "PUT", e+"/jobs/"+NewJobID()+"/acquire", agentTok, nil); c != 422 {
		t.Errorf("acquiring an unknown job: %d, want 422", c)
	}
	if c, b := call(t, "PUT", e+"/jobs/"+id+"/acquire", agentTok, nil); c != 200 || !strings.Contains(string(b), `"token":"`+jobTok+`"`) {
		t.Errorf("acquire: %d %s", c, b)
	}
	if c, _ := call(t, "PUT", e+"/jobs/"+id+"/start", agentTok, nil); c != 401 {
		t.Errorf("start with the agent token: %d, want 401", c)
	}
	if c, b := call(t, "GET", e+"/jobs/"+id, jobTok, nil); c != 200 || string(b) != `{"state":"accepted"}` {
		t.Errorf("job state: %d %s", c, b)
	}
	s.Cancel(id)
	if _, b := call(t, "GET", e+"/jobs/"+id, jobTok, nil); string(b) != `{"state":"canceling"}` {
		t.Errorf("job state after Cancel: %s", b)
	}
	if c, b := call(t, "POST", e+"/heartbeat", agentTok, map[string]string{"sent_at": "x"}); c != 200 || !strings.Contains(string(b), "received_at") {
		t.Errorf("heartbeat: %d %s", c, b)
	}

	// meta-data round trip
	if _, b := call(t, "POST", e+"/jobs/"+id+"/data/exists", jobTok, map[string]string{"key": "k"}); string(b) != `{"exists":false}` {
		t.Errorf("exists before set: %s", b)
	}
	if c, _ := call(t, "POST", e+"/jobs/"+id+"/data/get", jobTok, map[string]string{"key": "k"}); c != 404 {
		t.Errorf("get before set: %d, want 404", c)
	}
	call(t, "POST", e+"/jobs/"+id+"/data/set", jobTok, map[string]string{"key": "k", "value": "v"})
	if _, b := call(t, "POST", e+"/jobs/"+id+"/data/exists", jobTok, map[string]string{"key": "k"}); string(b) != `{"exists":true}` {
		t.Errorf("exists after set: %s", b)
	}
	if _, b := call(t, "POST", e+"/jobs/"+id+"/data/get", jobTok, map[string]string{"key": "k"}); string(b) != `{"key":"k","value":"v"}` {
		t.Errorf("get after set: %s", b)
	}

	// OIDC token shape
	c, b = call(t, "POST", e+"/jobs/"+id+"/oidc/tokens", jobTok, map[string]string{"audience": "aud-1"})
	var tok struct{ Token string }
	json.Unmarshal(b, &tok)
	parts := strings.Split(tok.Token, ".")
	if c != 200 || len(parts) != 3 || tok.Token != s.OIDCToken(id, "aud-1") {
		t.Fatalf("oidc: %d %s", c, b)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if !strings.Contains(string(payload), `"aud":"aud-1"`) {
		t.Errorf("oidc payload %s lacks the audience", payload)
	}

	if c, _ := call(t, "POST", strings.TrimSuffix(e, "/v3")+"/agentedge.v1.AgentEdgeService/StreamPings", agentTok, nil); c != 404 {
		t.Errorf("StreamPings: %d, want 404", c)
	}
}

// TestAgentPassesAJobsQueueVariableThrough records what the real agent does
// with BUILDKITE_AGENT_META_DATA_QUEUE in the job it is given (where a
// step's env: would put it, if the backend let it): the agent, tagged
// queue=build in its configuration file and on its command line, passes
// the job's value through to the bootstrap unchanged; it sets no variable
// of its own tags. What it does set, and a step cannot change, is
// BUILDKITE_CONFIG_PATH, the file whose tags line dockhand reads for the
// agent's own queue (issue 23.6).
func TestAgentPassesAJobsQueueVariableThrough(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.cfg")
	if err := os.WriteFile(cfg, []byte("tags=\"queue=build,docker=true\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := NewJobID()
	env := MinimalEnv(id, `echo "queue=[$BUILDKITE_AGENT_META_DATA_QUEUE] docker=[${BUILDKITE_AGENT_META_DATA_DOCKER:-unset}] config=[$BUILDKITE_CONFIG_PATH]"`)
	env["BUILDKITE_AGENT_META_DATA_QUEUE"] = "trusted" // as a step's env: would set it
	env["BUILDKITE_CONFIG_PATH"] = "/tmp/step-chosen.cfg"
	s.AddJob(Job{ID: id, Env: env})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	p := harness.StartAgent(t, s.AgentArgs(dir, id, "--tags", "queue=build,docker=true"))
	f, err := s.WaitFinish(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	p.Wait(ctx)
	log := Plain(s.Log(id))
	want := "queue=[trusted] docker=[unset] config=[" + cfg + "]"
	if f.ExitStatus != "0" || !hasLine(log, want) {
		t.Errorf("finish %s; want the line %q in:\n%s", f.Raw, want, log)
	}
	t.Logf("the job saw: %s", want)
}
