package agentapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request is one HTTP request the server received.
type Request struct {
	Method string
	Path   string // URL path, without the query
	Query  string // raw query string
	Auth   string // the Authorization header, e.g. "Token abc"
	Body   []byte // the body as received (chunk bodies are still gzipped)
	Status int    // the status the server answered with
}

// Finish is the body of PUT /v3/jobs/{id}/finish.
type Finish struct {
	ExitStatus   string          `json:"exit_status"`
	Signal       string          `json:"signal"`
	SignalReason string          `json:"signal_reason"`
	Raw          json.RawMessage `json:"-"` // the whole body
}

// Job states, as the fake tracks them.
const (
	stateScheduled = "scheduled" // added, not yet handed out
	stateAssigned  = "assigned"  // handed to an agent by a ping, not yet accepted
	stateAccepted  = "accepted"  // acquired or accepted
	stateRunning   = "running"   // started
	stateFinished  = "finished"
)

type jobState struct {
	job      Job
	state    string
	agent    string // id of the agent that owns the job
	reserved bool   // only --acquire-job may take it; pings never offer it
	canceled bool
	chunks   map[uint64][]byte
	finish   *Finish
}

type agentState struct {
	id, name, token  string
	ignoreDispatches bool
	job              string // the job this agent took, if any
	disconnected     bool
}

// Server is a fake Buildkite Agent API on 127.0.0.1. It is safe for
// concurrent use and serves any number of agents and jobs at once.
type Server struct {
	Endpoint          string // http://127.0.0.1:PORT/v3
	RegistrationToken string // the token agents must register with

	srv *httptest.Server

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every state change
	jobs      map[string]*jobState
	order     []string               // job ids in AddJob order
	agents    map[string]*agentState // by access token
	nAgents   int
	requests  []Request
	audiences []string
	issued    map[string]string            // job id + "\x00" + audience -> the last token issued
	metadata  map[string]map[string]string // build id -> key -> value
	// annotations: build id -> scope + "\x00" + context -> annotation
	annotations      map[string]map[string]*Annotation
	refuseAnnotation int // when non-zero, annotation requests get this status
}

// Start starts a server on 127.0.0.1 on a free port.
func Start() (*Server, error) {
	s := &Server{
		RegistrationToken: "reg-token-" + NewJobID()[:8],
		changed:           make(chan struct{}),
		jobs:              map[string]*jobState{},
		agents:            map[string]*agentState{},
		metadata:          map[string]map[string]string{},
		annotations:       map[string]map[string]*Annotation{},
	}
	s.srv = httptest.NewServer(s.routes())
	s.Endpoint = s.srv.URL + "/v3"
	return s, nil
}

// Close shuts the server down. Agents still talking to it see connection
// errors.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// broadcast wakes every waiter. Callers hold s.mu.
func (s *Server) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// AddJob queues a job. It is served to PUT /v3/jobs/{id}/acquire, and to
// the first pinging agent that did not register for --acquire-job (unless
// AgentArgs reserved it). Empty fields get defaults: a new ID, MinimalEnv
// running "true", and the token "job-token-"+ID[:8]. Adding an id twice
// replaces the job and resets its state.
func (s *Server) AddJob(j Job) {
	if j.ID == "" {
		j.ID = NewJobID()
	}
	if j.Env == nil {
		j.Env = MinimalEnv(j.ID, "true")
	} else {
		j.Env = maps(j.Env)
	}
	if j.Token == "" {
		j.Token = "job-token-" + prefix(j.ID, 8)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.jobs[j.ID]
	if !ok {
		s.order = append(s.order, j.ID)
	}
	s.jobs[j.ID] = &jobState{job: j, state: stateScheduled, reserved: ok && old.reserved, chunks: map[uint64][]byte{}}
	s.broadcast()
}

// Cancel makes GET /v3/jobs/{id} answer "canceling" from now on (and
// "canceled" once the job has finished). The agent polls that every
// job_status_interval (1 s) and then cancels the job.
func (s *Server) Cancel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.jobs[id]; ok {
		j.canceled = true
		s.broadcast()
	}
}

// reserve marks a job as only acquirable (see AgentArgs).
func (s *Server) reserve(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.jobs[id]; ok {
		j.reserved = true
	}
}

// Log returns the job log rebuilt from the gunzipped chunks in sequence
// order, exactly as the agent sent it (with ANSI timestamps and CRs if the
// agent used them).
func (s *Server) Log(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked(id)
}

func (s *Server) logLocked(id string) string {
	j, ok := s.jobs[id]
	if !ok {
		return ""
	}
	seqs := make([]uint64, 0, len(j.chunks))
	for k := range j.chunks {
		seqs = append(seqs, k)
	}
	slices.Sort(seqs)
	var b strings.Builder
	for _, k := range seqs {
		b.Write(j.chunks[k])
	}
	return b.String()
}

// apcTimestamp matches the per-line timestamps the agent inserts unless it
// runs with --no-ansi-timestamps.
var apcTimestamp = regexp.MustCompile("\x1b_bk;t=[0-9]*\x07")

// Plain strips the agent's per-line APC timestamps and carriage returns
// from a job log, leaving "\n"-separated lines.
func Plain(log string) string {
	return strings.ReplaceAll(apcTimestamp.ReplaceAllString(log, ""), "\r", "")
}

// PlainLog is Plain(Log(id)).
func (s *Server) PlainLog(id string) string { return Plain(s.Log(id)) }

// wait calls check under the lock each time the state changes until it
// reports done, or ctx ends.
func (s *Server) wait(ctx context.Context, check func() (done bool, err error)) error {
	for {
		s.mu.Lock()
		done, err := check()
		ch := s.changed
		s.mu.Unlock()
		if done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// WaitLog blocks until the job log contains substr, matched against both
// the log as sent and its Plain form (so "\nREADY" finds a line starting
// with READY even with timestamps on). It fails early if the job finishes
// without it: the agent flushes the log before it calls finish.
func (s *Server) WaitLog(ctx context.Context, id, substr string) error {
	err := s.wait(ctx, func() (bool, error) {
		log := s.logLocked(id)
		if strings.Contains(log, substr) || strings.Contains(Plain(log), substr) {
			return true, nil
		}
		if j, ok := s.jobs[id]; ok && j.finish != nil {
			return true, fmt.Errorf("agentapi: job %s finished (exit_status %q) and its log has no %q", id, j.finish.ExitStatus, substr)
		}
		return false, nil
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("agentapi: waiting for %q in the log of job %s: %w; log so far:\n%s", substr, id, err, s.PlainLog(id))
	}
	return err
}

// WaitFinish blocks until the agent has finished the job and returns the
// finish body.
func (s *Server) WaitFinish(ctx context.Context, id string) (Finish, error) {
	var f Finish
	err := s.wait(ctx, func() (bool, error) {
		if j, ok := s.jobs[id]; ok && j.finish != nil {
			f = *j.finish
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		s.mu.Lock()
		state := "unknown"
		if j, ok := s.jobs[id]; ok {
			state = j.state
		}
		s.mu.Unlock()
		return f, fmt.Errorf("agentapi: waiting for job %s (state %s) to finish: %w", id, state, err)
	}
	return f, nil
}

// Requests returns a copy of every request received so far, in order of
// arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// OIDCAudiences returns the audience of every OIDC token request, in order.
func (s *Server) OIDCAudiences() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audiences)
}

// OIDCToken returns the last token the server handed out for a job and
// audience ("" before any).
func (s *Server) OIDCToken(jobID, audience string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued[jobID+"\x00"+audience]
}

// OIDCDefaultLifetime is the lifetime of a token requested without one
// (buildkite-agent's --lifetime omitted or 0): Buildkite's API gives five
// minutes.
const OIDCDefaultLifetime = 5 * time.Minute

// oidcSignature ends every token the server hands out: OIDCSignature is
// what a test watches for to find any of them.
const oidcSignature = "agentapi-fake-signature"

// OIDCSignature is the last part of every token the server hands out.
func OIDCSignature() string { return base64.RawURLEncoding.EncodeToString([]byte(oidcSignature)) }

// issueOIDC makes the token for a job and audience, issued now for
// lifetime: an unsigned JWT ("alg":"none") whose payload carries iss, sub,
// aud (the audience), iat, nbf and exp (iat + lifetime).
func issueOIDC(jobID, audience string, now time.Time, lifetime time.Duration) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	iat := now.Unix()
	payload, _ := json.Marshal(map[string]any{
		"iss":    "https://agent.buildkite.com",
		"sub":    "organization:org:pipeline:pipeline:ref:refs/heads/main:commit:HEAD:step:",
		"aud":    audience,
		"iat":    iat,
		"nbf":    iat,
		"exp":    iat + int64(lifetime/time.Second),
		"job_id": jobID,
	})
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + OIDCSignature()
}

// --- HTTP ---

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// bodyKey carries the already-read request body to the handlers.
type bodyKey struct{}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/register", s.register)
	mux.HandleFunc("POST /v3/connect", s.agentOnly(func(w http.ResponseWriter, r *http.Request, a *agentState) {
		reply(w, http.StatusOK, struct{}{})
	}))
	mux.HandleFunc("POST /v3/disconnect", s.agentOnly(s.disconnect))
	mux.HandleFunc("POST /v3/heartbeat", s.agentOnly(s.heartbeat))
	mux.HandleFunc("GET /v3/ping", s.agentOnly(s.ping))
	mux.HandleFunc("PUT /v3/jobs/{id}/acquire", s.agentOnly(s.take(false)))
	mux.HandleFunc("PUT /v3/jobs/{id}/accept", s.agentOnly(s.take(true)))
	mux.HandleFunc("PUT /v3/jobs/{id}/start", s.jobOnly(s.start))
	mux.HandleFunc("POST /v3/jobs/{id}/chunks", s.jobOnly(s.chunk))
	mux.HandleFunc("POST /v3/jobs/{id}/header_times", s.jobOnly(func(w http.ResponseWriter, r *http.Request, j *jobState) {
		reply(w, http.StatusOK, struct{}{})
	}))
	mux.HandleFunc("GET /v3/jobs/{id}", s.jobOnly(s.jobState))
	mux.HandleFunc("PUT /v3/jobs/{id}/finish", s.jobOnly(s.finish))
	mux.HandleFunc("POST /v3/jobs/{id}/data/exists", s.jobOnly(s.dataExists))
	mux.HandleFunc("POST /v3/jobs/{id}/data/set", s.jobOnly(s.dataSet))
	mux.HandleFunc("POST /v3/jobs/{id}/data/set-batch", s.jobOnly(s.dataSetBatch))
	mux.HandleFunc("POST /v3/jobs/{id}/data/get", s.jobOnly(s.dataGet))
	mux.HandleFunc("POST /v3/jobs/{id}/data/keys", s.jobOnly(s.dataKeys))
	mux.HandleFunc("POST /v3/jobs/{id}/oidc/tokens", s.jobOnly(s.oidc))
	mux.HandleFunc("POST /v3/jobs/{id}/annotations", s.jobOnly(s.annotate))
	mux.HandleFunc("DELETE /v3/jobs/{id}/annotations/{context}", s.jobOnly(s.annotationRemove))
	// The connect-RPC streaming ping service (only tried with --ping-mode
	// auto): a 404 makes the agent fall back to polling.
	mux.HandleFunc("/agentedge.v1.AgentEdgeService/", func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, msg("agentapi: no such endpoint: "+r.Method+" "+r.URL.Path))
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		idx := len(s.requests)
		s.requests = append(s.requests, Request{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Auth: r.Header.Get("Authorization"), Body: body,
		})
		s.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w}
		mux.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), bodyKey{}, body)))
		s.mu.Lock()
		s.requests[idx].Status = sw.status
		s.mu.Unlock()
	})
}

func reqBody(r *http.Request) []byte {
	b, _ := r.Context().Value(bodyKey{}).([]byte)
	return b
}

type message struct {
	Message string `json:"message"`
}

func msg(m string) message { return message{Message: m} }

func reply(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"agentapi: encoding the reply failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func token(r *http.Request) string {
	t, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
	return t
}

// agentOnly checks the agent access token.
func (s *Server) agentOnly(h func(http.ResponseWriter, *http.Request, *agentState)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		a, ok := s.agents[token(r)]
		s.mu.Unlock()
		if !ok {
			reply(w, http.StatusUnauthorized, msg("agentapi: not an agent access token"))
			return
		}
		h(w, r, a)
	}
}

// jobOnly looks the job up and checks its job token.
func (s *Server) jobOnly(h func(http.ResponseWriter, *http.Request, *jobState)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		s.mu.Lock()
		j, ok := s.jobs[id]
		var tok string
		if ok {
			tok = j.job.Token
		}
		s.mu.Unlock()
		switch {
		case !ok:
			reply(w, http.StatusNotFound, msg("agentapi: no such job "+id))
		case token(r) != tok:
			reply(w, http.StatusUnauthorized, msg("agentapi: wrong job token for job "+id))
		default:
			h(w, r, j)
		}
	}
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	if token(r) != s.RegistrationToken {
		reply(w, http.StatusUnauthorized, msg("agentapi: wrong registration token"))
		return
	}
	var req struct {
		Name               string `json:"name"`
		IgnoreInDispatches bool   `json:"ignore_in_dispatches"`
	}
	if err := json.Unmarshal(reqBody(r), &req); err != nil {
		reply(w, http.StatusBadRequest, msg("agentapi: bad register body: "+err.Error()))
		return
	}
	s.mu.Lock()
	s.nAgents++
	a := &agentState{
		id:               NewJobID(),
		name:             req.Name,
		token:            fmt.Sprintf("agent-token-%d-%s", s.nAgents, NewJobID()[:8]),
		ignoreDispatches: req.IgnoreInDispatches,
	}
	if a.name == "" {
		a.name = fmt.Sprintf("agent-%d", s.nAgents)
	}
	s.agents[a.token] = a
	s.broadcast()
	s.mu.Unlock()
	reply(w, http.StatusOK, map[string]any{
		"id":                  a.id,
		"name":                a.name,
		"access_token":        a.token,
		"endpoint":            s.Endpoint,
		"ping_interval":       1,
		"job_status_interval": 1,
		"heartbeat_interval":  60,
		"meta_data":           []string{},
	})
}

func (s *Server) disconnect(w http.ResponseWriter, r *http.Request, a *agentState) {
	s.mu.Lock()
	a.disconnected = true
	s.broadcast()
	s.mu.Unlock()
	reply(w, http.StatusOK, struct{}{})
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, a *agentState) {
	var hb struct {
		SentAt string `json:"sent_at"`
	}
	json.Unmarshal(reqBody(r), &hb)
	reply(w, http.StatusOK, map[string]string{"sent_at": hb.SentAt, "received_at": time.Now().UTC().Format(time.RFC3339Nano)})
}

type jobJSON struct {
	ID                    string            `json:"id"`
	Endpoint              string            `json:"endpoint"`
	State                 string            `json:"state"`
	Env                   map[string]string `json:"env"`
	ChunksMaxSizeBytes    uint64            `json:"chunks_max_size_bytes"`
	ChunksIntervalSeconds int               `json:"chunks_interval_seconds"`
	LogMaxSizeBytes       uint64            `json:"log_max_size_bytes"`
	Token                 string            `json:"token"`
}

func (s *Server) jobJSON(j *jobState) jobJSON {
	return jobJSON{
		ID:                    j.job.ID,
		Endpoint:              s.Endpoint,
		State:                 j.state,
		Env:                   maps(j.job.Env),
		ChunksMaxSizeBytes:    1 << 20,
		ChunksIntervalSeconds: 1,
		LogMaxSizeBytes:       100 << 20,
		Token:                 j.job.Token,
	}
}

// ping: an agent whose job has finished is told to disconnect; an agent
// with a job in hand, or registered for --acquire-job, gets {}; any other
// agent is offered the oldest job nobody has taken.
func (s *Server) ping(w http.ResponseWriter, r *http.Request, a *agentState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.job != "" {
		if j, ok := s.jobs[a.job]; ok && j.state == stateFinished {
			reply(w, http.StatusOK, map[string]string{"action": "disconnect"})
			return
		}
		if j, ok := s.jobs[a.job]; ok && j.state == stateAssigned {
			reply(w, http.StatusOK, map[string]any{"job": s.jobJSON(j)}) // offered again until accepted
			return
		}
		reply(w, http.StatusOK, struct{}{})
		return
	}
	if !a.ignoreDispatches {
		for _, id := range s.order {
			j := s.jobs[id]
			if j.state == stateScheduled && !j.reserved {
				j.state, j.agent, a.job = stateAssigned, a.id, id
				s.broadcast()
				reply(w, http.StatusOK, map[string]any{"job": s.jobJSON(j)})
				return
			}
		}
	}
	reply(w, http.StatusOK, struct{}{})
}

// take handles acquire (--acquire-job) and accept (after a ping).
func (s *Server) take(accept bool) func(http.ResponseWriter, *http.Request, *agentState) {
	return func(w http.ResponseWriter, r *http.Request, a *agentState) {
		id := r.PathValue("id")
		s.mu.Lock()
		defer s.mu.Unlock()
		j, ok := s.jobs[id]
		switch {
		case !ok:
			// 422 is what the agent treats as "cannot be acquired, don't retry".
			reply(w, http.StatusUnprocessableEntity, msg("agentapi: no such job "+id))
			return
		case j.agent != "" && j.agent != a.id:
			reply(w, http.StatusUnprocessableEntity, msg("agentapi: job "+id+" belongs to another agent"))
			return
		case j.state != stateScheduled && j.state != stateAssigned:
			reply(w, http.StatusUnprocessableEntity, msg("agentapi: job "+id+" is already "+j.state))
			return
		case accept && j.state != stateAssigned:
			reply(w, http.StatusUnprocessableEntity, msg("agentapi: job "+id+" was not offered to this agent"))
			return
		case a.job != "" && a.job != id:
			reply(w, http.StatusUnprocessableEntity, msg("agentapi: agent already has job "+a.job))
			return
		}
		j.state, j.agent, a.job = stateAccepted, a.id, id
		s.broadcast()
		reply(w, http.StatusOK, s.jobJSON(j))
	}
}

func (s *Server) start(w http.ResponseWriter, r *http.Request, j *jobState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.state != stateAccepted && j.state != stateRunning {
		reply(w, http.StatusUnprocessableEntity, msg("agentapi: job is "+j.state+", cannot start"))
		return
	}
	j.state = stateRunning
	s.broadcast()
	reply(w, http.StatusOK, struct{}{})
}

func (s *Server) chunk(w http.ResponseWriter, r *http.Request, j *jobState) {
	q := r.URL.Query()
	seq, err := strconv.ParseUint(q.Get("sequence"), 10, 64)
	if err != nil {
		reply(w, http.StatusBadRequest, msg("agentapi: bad sequence: "+err.Error()))
		return
	}
	data := reqBody(r)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err == nil {
			data, err = io.ReadAll(zr)
		}
		if err != nil {
			reply(w, http.StatusBadRequest, msg("agentapi: bad gzip chunk: "+err.Error()))
			return
		}
	}
	if size := q.Get("size"); size != "" && size != strconv.Itoa(len(data)) {
		reply(w, http.StatusBadRequest, msg(fmt.Sprintf("agentapi: chunk size %s but %d bytes", size, len(data))))
		return
	}
	s.mu.Lock()
	j.chunks[seq] = data
	s.broadcast()
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) jobState(w http.ResponseWriter, r *http.Request, j *jobState) {
	s.mu.Lock()
	state := j.state
	if j.canceled {
		state = "canceling"
		if j.state == stateFinished {
			state = "canceled"
		}
	}
	s.mu.Unlock()
	reply(w, http.StatusOK, map[string]string{"state": state})
}

func (s *Server) finish(w http.ResponseWriter, r *http.Request, j *jobState) {
	body := reqBody(r)
	var f Finish
	if err := json.Unmarshal(body, &f); err != nil {
		reply(w, http.StatusBadRequest, msg("agentapi: bad finish body: "+err.Error()))
		return
	}
	f.Raw = json.RawMessage(bytes.Clone(body))
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.finish == nil { // a retried finish keeps the first body
		j.finish = &f
		j.state = stateFinished
		s.broadcast()
	}
	reply(w, http.StatusOK, struct{}{})
}

// build returns the meta-data map of the job's build. Callers hold s.mu.
func (s *Server) build(j *jobState) map[string]string {
	b := j.job.Env["BUILDKITE_BUILD_ID"]
	if b == "" {
		b = "job:" + j.job.ID
	}
	m, ok := s.metadata[b]
	if !ok {
		m = map[string]string{}
		s.metadata[b] = m
	}
	return m
}

type metaData struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (s *Server) dataExists(w http.ResponseWriter, r *http.Request, j *jobState) {
	var md metaData
	json.Unmarshal(reqBody(r), &md)
	s.mu.Lock()
	_, ok := s.build(j)[md.Key]
	s.mu.Unlock()
	reply(w, http.StatusOK, map[string]bool{"exists": ok})
}

func (s *Server) dataSet(w http.ResponseWriter, r *http.Request, j *jobState) {
	var md metaData
	if err := json.Unmarshal(reqBody(r), &md); err != nil || md.Key == "" {
		reply(w, http.StatusUnprocessableEntity, msg("agentapi: meta-data set needs a key"))
		return
	}
	s.mu.Lock()
	s.build(j)[md.Key] = md.Value
	s.broadcast()
	s.mu.Unlock()
	reply(w, http.StatusOK, struct{}{})
}

func (s *Server) dataSetBatch(w http.ResponseWriter, r *http.Request, j *jobState) {
	var batch struct {
		Items []metaData `json:"items"`
	}
	if err := json.Unmarshal(reqBody(r), &batch); err != nil {
		reply(w, http.StatusUnprocessableEntity, msg("agentapi: bad meta-data batch: "+err.Error()))
		return
	}
	s.mu.Lock()
	m := s.build(j)
	for _, it := range batch.Items {
		m[it.Key] = it.Value
	}
	s.broadcast()
	s.mu.Unlock()
	reply(w, http.StatusOK, struct{}{})
}

func (s *Server) dataGet(w http.ResponseWriter, r *http.Request, j *jobState) {
	var md metaData
	json.Unmarshal(reqBody(r), &md)
	s.mu.Lock()
	v, ok := s.build(j)[md.Key]
	s.mu.Unlock()
	if !ok {
		reply(w, http.StatusNotFound, msg("agentapi: no meta-data key "+md.Key))
		return
	}
	reply(w, http.StatusOK, metaData{Key: md.Key, Value: v})
}

func (s *Server) dataKeys(w http.ResponseWriter, r *http.Request, j *jobState) {
	s.mu.Lock()
	keys := make([]string, 0)
	for k := range s.build(j) {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	sort.Strings(keys)
	reply(w, http.StatusOK, keys)
}

func (s *Server) oidc(w http.ResponseWriter, r *http.Request, j *jobState) {
	var req struct {
		Audience string `json:"audience"`
		Lifetime int    `json:"lifetime"` // seconds; 0 or absent: the default
	}
	if body := reqBody(r); len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			reply(w, http.StatusBadRequest, msg("agentapi: bad oidc body: "+err.Error()))
			return
		}
	}
	if req.Lifetime < 0 {
		reply(w, http.StatusUnprocessableEntity, msg("lifetime must be a non-negative integer"))
		return
	}
	lifetime := OIDCDefaultLifetime
	if req.Lifetime > 0 {
		lifetime = time.Duration(req.Lifetime) * time.Second
	}
	tok := issueOIDC(j.job.ID, req.Audience, time.Now(), lifetime)
	s.mu.Lock()
	s.audiences = append(s.audiences, req.Audience)
	if s.issued == nil {
		s.issued = map[string]string{}
	}
	s.issued[j.job.ID+"\x00"+req.Audience] = tok
	s.broadcast()
	s.mu.Unlock()
	reply(w, http.StatusOK, map[string]string{"token": tok})
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func prefix(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}
