package agentapi

import (
	"encoding/json"
	"net/http"
	"sort"
)

// Annotation is a build annotation as the fake keeps it: the body of
// POST /v3/jobs/{id}/annotations (`buildkite-agent annotate`; the agent's
// api.Annotation), with appends already applied.
type Annotation struct {
	Body     string `json:"body,omitempty"`
	Context  string `json:"context,omitempty"`
	Style    string `json:"style,omitempty"`
	Append   bool   `json:"append,omitempty"`
	Priority int    `json:"priority,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Job      string `json:"-"` // the job that last wrote it
}

// defaultAnnotationContext is the context the API gives an annotation
// created without one.
const defaultAnnotationContext = "default"

func annotationKey(scope, context string) string {
	if context == "" {
		context = defaultAnnotationContext
	}
	return scope + "\x00" + context
}

// MaxAnnotationBody is the largest annotation body the API keeps, in
// bytes; the agent refuses a bigger one before sending it
// (clicommand/annotate.go, maxBodySize).
const MaxAnnotationBody = 1 << 20

// annotationTooLarge is the API's message for a body over the limit, as
// `buildkite-agent annotate` prints it after "400 Bad Request: ".
const annotationTooLarge = "The annotation body must be less than 1 MB"

// annotations returns the map of the job's build. Callers hold s.mu.
func (s *Server) buildAnnotations(j *jobState) map[string]*Annotation {
	b := j.job.Env["BUILDKITE_BUILD_ID"]
	if b == "" {
		b = "job:" + j.job.ID
	}
	m, ok := s.annotations[b]
	if !ok {
		m = map[string]*Annotation{}
		s.annotations[b] = m
	}
	return m
}

// annotate creates, replaces or (append: true) extends an annotation of the
// job's build: the same context (and scope) names the same annotation. A
// body-less request with a style only restyles an existing one.
func (s *Server) annotate(w http.ResponseWriter, r *http.Request, j *jobState) {
	var a Annotation
	if err := json.Unmarshal(reqBody(r), &a); err != nil {
		reply(w, http.StatusBadRequest, msg("agentapi: bad annotation body: "+err.Error()))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuseAnnotation != 0 {
		reply(w, s.refuseAnnotation, msg("agentapi: annotations refused"))
		return
	}
	switch a.Style {
	case "", "success", "info", "warning", "error":
	default:
		reply(w, http.StatusUnprocessableEntity, msg("agentapi: style must be one of success, info, warning, error"))
		return
	}
	m := s.buildAnnotations(j)
	key := annotationKey(a.Scope, a.Context)
	cur, ok := m[key]
	if len(a.Body) > MaxAnnotationBody || ok && a.Append && len(cur.Body)+len(a.Body) > MaxAnnotationBody {
		reply(w, http.StatusBadRequest, msg(annotationTooLarge))
		return
	}
	switch {
	case !ok && a.Body == "":
		reply(w, http.StatusUnprocessableEntity, msg("agentapi: an annotation needs a body"))
		return
	case !ok:
		cur = &Annotation{Context: a.Context, Scope: a.Scope, Style: "default"}
		if cur.Context == "" {
			cur.Context = defaultAnnotationContext
		}
		m[key] = cur
		cur.Body = a.Body
	case a.Append:
		cur.Body += a.Body
	case a.Body != "":
		cur.Body = a.Body
	}
	if a.Style != "" {
		cur.Style = a.Style
	}
	if a.Priority != 0 {
		cur.Priority = a.Priority
	}
	cur.Job = j.job.ID
	s.broadcast()
	reply(w, http.StatusCreated, map[string]string{"id": j.job.ID + "/" + cur.Context})
}

// annotationRemove deletes an annotation by context (and ?scope=).
func (s *Server) annotationRemove(w http.ResponseWriter, r *http.Request, j *jobState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.buildAnnotations(j)
	key := annotationKey(r.URL.Query().Get("scope"), r.PathValue("context"))
	if _, ok := m[key]; !ok {
		reply(w, http.StatusNotFound, msg("agentapi: no annotation with context "+r.PathValue("context")))
		return
	}
	delete(m, key)
	s.broadcast()
	reply(w, http.StatusOK, struct{}{})
}

// Annotations returns the annotations of the build the job belongs to
// (its BUILDKITE_BUILD_ID, else the job alone), sorted by context.
func (s *Server) Annotations(jobID string) []Annotation {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[jobID]
	if !ok {
		return nil
	}
	var out []Annotation
	for _, a := range s.buildAnnotations(j) {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Context < out[k].Context })
	return out
}

// RefuseAnnotations makes every annotation request get status (0: accept
// them again), as the API does when it refuses one.
func (s *Server) RefuseAnnotations(status int) {
	s.mu.Lock()
	s.refuseAnnotation = status
	s.mu.Unlock()
}
