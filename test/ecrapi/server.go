// Package ecrapi is a fake Amazon ECR control plane for tests: an HTTP
// server on loopback speaking the real AWS JSON 1.1 protocol of ECR
// (AmazonEC2ContainerRegistry_V20150921) and ECR Public
// (SpencerFrontendService) to the real aws-sdk-go-v2, which finds it through
// AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL_ECR_PUBLIC. Requests must be
// SigV4-signed with one of the configured access keys; the signature is
// checked.
//
// It serves GetAuthorizationToken (both services), DescribeRepositories,
// CreateRepository and PutLifecyclePolicy, and EC2's DescribeInstances in
// EC2's query protocol (form-encoded requests, XML answers; found through
// AWS_ENDPOINT_URL_EC2). The tokens it issues carry the
// password of the real registry it fronts (a distribution registry started
// with htpasswd user AWS), so what the tests push really is authenticated
// by that password. Throttling, server errors and other failures can be
// injected; every call is counted.
package ecrapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Operation names, as counted by Calls.
const (
	OpGetAuthorizationToken       = "GetAuthorizationToken"
	OpPublicGetAuthorizationToken = "ecr-public:GetAuthorizationToken"
	OpDescribeRepositories        = "DescribeRepositories"
	OpCreateRepository            = "CreateRepository"
	OpPutLifecyclePolicy          = "PutLifecyclePolicy"
)

const (
	ecrTarget       = "AmazonEC2ContainerRegistry_V20150921"
	ecrPublicTarget = "SpencerFrontendService"
)

// Options configure the fake.
type Options struct {
	// Keys maps access key id -> secret access key; only requests signed
	// with one of them are served.
	Keys map[string]string
	// User and Password are what every authorization token decodes to
	// (default user "AWS"): the credentials of the registry the fake fronts.
	User, Password string
	// TokenTTL is the lifetime of issued tokens (default 12h, as ECR's).
	TokenTTL time.Duration
	// RegistryHost names the registry of account in region, for
	// proxyEndpoint and repositoryUri; default the real ECR hostname.
	RegistryHost func(account, region string) string
	// Allow lists, per access key, the IAM actions its identity policy
	// grants (ecr:CreateRepository…; StackPolicy gives the Elastic CI
	// Stack's); a key not listed may do everything. A call without its
	// action is refused with AccessDeniedException, as IAM refuses it.
	Allow map[string][]string
	// Account is the account the keys belong to (default 123456789012):
	// repository calls on another account's registry are refused, as no
	// repository policy there lets this account in.
	Account string
}

// StackPolicy is what the Elastic CI Stack's ECRAccessPolicy parameter
// grants the agents' instance role, as IAM actions: AWS's managed policies
// AmazonEC2ContainerRegistryReadOnly (readonly), …PowerUser (poweruser:
// read, and push to existing repositories) and …FullAccess (full: ecr:*),
// and for the -pullthrough values the stack's ECRPullThrough statement on
// top (ecr:CreateRepository and the push and import actions).
func StackPolicy(value string) []string {
	read := []string{"ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer",
		"ecr:GetRepositoryPolicy", "ecr:DescribeRepositories", "ecr:ListImages", "ecr:DescribeImages", "ecr:BatchGetImage",
		"ecr:GetLifecyclePolicy", "ecr:GetLifecyclePolicyPreview", "ecr:ListTagsForResource", "ecr:DescribeImageScanFindings"}
	push := []string{"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"}
	pullThrough := append([]string{"ecr:CreateRepository", "ecr:BatchImportUpstreamImage", "ecr:GetImageCopyStatus"}, push...)
	switch value {
	case "readonly":
		return read
	case "readonly-pullthrough":
		return append(slices.Clone(read), pullThrough...)
	case "poweruser":
		return append(slices.Clone(read), push...)
	case "poweruser-pullthrough":
		return append(append(slices.Clone(read), push...), pullThrough...)
	case "full":
		return []string{"ecr:*"}
	}
	return []string{} // none
}

// Call is one request the fake received.
type Call struct {
	Op          string
	AccessKeyID string
	Region      string
	Service     string // the SigV4 signing name: ecr or ecr-public
	RegistryIDs []string
	Injected    string // the error code injected instead of an answer, if any
	At          time.Time
}

// Repository is a repository the fake holds.
type Repository struct {
	Account, Region, Name string
	LifecyclePolicy       string
	CreatedAt             time.Time
}

// Server is a running fake.
type Server struct {
	URL string

	o    Options
	srv  *http.Server
	ln   net.Listener
	mu   sync.Mutex
	log  []Call
	fail []injected
	repo map[string]*Repository // account/region/name

	instances []Instance // EC2
	ec2Delay  time.Duration
}

type injected struct {
	status int
	code   string
}

// Start starts a fake on a loopback port.
func Start(o Options) (*Server, error) {
	if o.User == "" {
		o.User = "AWS"
	}
	if o.Password == "" {
		return nil, errors.New("ecrapi: Options.Password is required")
	}
	if o.Account == "" {
		o.Account = "123456789012"
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = 12 * time.Hour
	}
	if o.RegistryHost == nil {
		o.RegistryHost = func(account, region string) string {
			return account + ".dkr.ecr." + region + ".amazonaws.com"
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + ln.Addr().String(), o: o, ln: ln, repo: map[string]*Repository{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// Calls returns how many requests for op arrived (injected failures
// included).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.log {
		if c.Op == op {
			n++
		}
	}
	return n
}

// Log returns every request received so far, in order.
func (s *Server) Log() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// ThrottleNext answers the next n requests with ThrottlingException (HTTP
// 400), as ECR does when its rate limit is hit.
func (s *Server) ThrottleNext(n int) { s.inject(n, http.StatusBadRequest, "ThrottlingException") }

// FailNext answers the next n requests with ServerException (HTTP 500).
func (s *Server) FailNext(n int) { s.inject(n, http.StatusInternalServerError, "ServerException") }

// DenyNext answers the next n requests with AccessDeniedException (HTTP
// 400), which is not retried.
func (s *Server) DenyNext(n int) { s.inject(n, http.StatusBadRequest, "AccessDeniedException") }

func (s *Server) inject(n, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, injected{status, code})
	}
}

// SetTokenTTL changes the lifetime of the tokens issued from now on.
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.o.TokenTTL = d
}

// Repository returns a repository the fake holds.
func (s *Server) Repository(account, region, name string) (Repository, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repo[account+"/"+region+"/"+name]
	if !ok {
		return Repository{}, false
	}
	return *r, true
}

// AddRepository makes a repository as someone else (an administrator,
// Terraform) would have, without a call.
func (s *Server) AddRepository(account, region, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo[account+"/"+region+"/"+name] = &Repository{Account: account, Region: region, Name: name, CreatedAt: time.Now()}
}

// Token returns the authorization token the fake issues: base64(USER:PASSWORD).
func (s *Server) Token() string {
	return base64.StdEncoding.EncodeToString([]byte(s.o.User + ":" + s.o.Password))
}

// apiError is an AWS JSON 1.1 error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, newError(http.StatusBadRequest, "SerializationException", "reading the body: %v", err))
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.serveEC2(w, r, body)
		return
	}
	out, err := s.handle(r, body)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = newError(http.StatusInternalServerError, "ServerException", "%v", err)
		}
		writeError(w, ae)
		return
	}
	data, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.Write(data)
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.WriteHeader(e.status)
	data, _ := json.Marshal(map[string]string{"__type": e.code, "message": e.message})
	w.Write(data)
}

var reqSeq struct {
	sync.Mutex
	n int
}

func requestID() string {
	reqSeq.Lock()
	defer reqSeq.Unlock()
	reqSeq.n++
	return fmt.Sprintf("ecrapi-%08d", reqSeq.n)
}

func (s *Server) handle(r *http.Request, body []byte) (any, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return nil, newError(http.StatusNotFound, "UnknownOperationException", "%s %s", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		return nil, newError(http.StatusBadRequest, "SerializationException", "content type %q is not application/x-amz-json-1.1", ct)
	}
	service, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	akid, region, signing, err := s.verify(r, body)
	if err != nil {
		return nil, err
	}
	call := Call{Op: op, AccessKeyID: akid, Region: region, Service: signing, At: time.Now()}
	switch {
	case service == ecrTarget && signing == "ecr":
	case service == ecrPublicTarget && signing == "ecr-public" && op == "GetAuthorizationToken":
		call.Op = OpPublicGetAuthorizationToken
	default:
		return nil, newError(http.StatusBadRequest, "UnknownOperationException", "unknown operation %q signed for %q", r.Header.Get("X-Amz-Target"), signing)
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, newError(http.StatusBadRequest, "SerializationException", "body is not a JSON object")
	}
	if ids, ok := in["registryIds"].([]any); ok {
		for _, id := range ids {
			if s, ok := id.(string); ok {
				call.RegistryIDs = append(call.RegistryIDs, s)
			}
		}
	}
	s.mu.Lock()
	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		call.Injected = f.code
		s.log = append(s.log, call)
		s.mu.Unlock()
		return nil, newError(f.status, f.code, "injected by the test")
	}
	s.log = append(s.log, call)
	s.mu.Unlock()

	account := s.o.Account
	if id, _ := in["registryId"].(string); id != "" {
		account = id
	}
	if err := s.authorize(akid, call.Op, account, region, in); err != nil {
		return nil, err
	}
	switch call.Op {
	case OpGetAuthorizationToken:
		return s.getAuthorizationToken(call, region), nil
	case OpPublicGetAuthorizationToken:
		return s.publicToken(), nil
	case OpDescribeRepositories:
		return s.describeRepositories(in, account, region)
	case OpCreateRepository:
		return s.createRepository(in, account, region)
	case OpPutLifecyclePolicy:
		return s.putLifecyclePolicy(in, account, region)
	}
	return nil, newError(http.StatusBadRequest, "UnknownOperationException", "operation %q is not served by this fake", op)
}

// authorize refuses a call its key's identity policy does not grant, or
// one on another account's repositories, as IAM words it.
func (s *Server) authorize(akid, op, account, region string, in map[string]any) error {
	action := "ecr:" + op
	if op == OpPublicGetAuthorizationToken {
		action = op
	}
	resource := "*"
	if name, _ := in["repositoryName"].(string); name != "" {
		resource = fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", region, account, name)
	} else if op == OpDescribeRepositories {
		resource = fmt.Sprintf("arn:aws:ecr:%s:%s:repository/*", region, account)
	}
	who := fmt.Sprintf("arn:aws:sts::%s:assumed-role/BuildkiteAgentRole/%s", s.o.Account, akid)
	deny := func(because string) error {
		return newError(http.StatusBadRequest, "AccessDeniedException",
			"User: %s is not authorized to perform: %s on resource: %s because %s", who, action, resource, because)
	}
	if allowed, listed := s.o.Allow[akid]; listed && !slices.Contains(allowed, action) && !slices.Contains(allowed, "ecr:*") {
		return deny("no identity-based policy allows the " + action + " action")
	}
	if account != s.o.Account {
		return deny("no resource-based policy allows the " + action + " action")
	}
	return nil
}

var credentialRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$`)

// verify checks the request's SigV4 signature against the configured keys
// and returns the access key id, region and signing name it was made for.
func (s *Server) verify(r *http.Request, body []byte) (akid, region, service string, err error) {
	m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return "", "", "", newError(http.StatusForbidden, "MissingAuthenticationTokenException", "the request is not SigV4-signed")
	}
	akid, region, service = m[1], m[3], m[4]
	secret, ok := s.o.Keys[akid]
	if !ok {
		return "", "", "", newError(http.StatusForbidden, "UnrecognizedClientException", "the security token included in the request is invalid")
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "", "", "", newError(http.StatusForbidden, "IncompleteSignatureException", "bad X-Amz-Date")
	}
	clone, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return "", "", "", err
	}
	clone.Host = r.Host
	for _, h := range strings.Split(m[5], ";") {
		switch h {
		case "host":
		case "content-length":
			clone.ContentLength = int64(len(body))
		default:
			clone.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	clone.Header.Del("X-Amz-Date")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, clone, hex.EncodeToString(sum[:]), service, region, when); err != nil {
		return "", "", "", err
	}
	mine := credentialRE.FindStringSubmatch(clone.Header.Get("Authorization"))
	if mine == nil || mine[6] != m[6] {
		return "", "", "", newError(http.StatusForbidden, "InvalidSignatureException",
			"the request signature we calculated does not match the signature you provided")
	}
	return akid, region, service, nil
}

// epoch renders a time as AWS JSON 1.1 does: seconds since the epoch.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (s *Server) ttl() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.o.TokenTTL
}

func (s *Server) getAuthorizationToken(call Call, region string) any {
	ids := call.RegistryIDs
	if len(ids) == 0 {
		ids = []string{s.o.Account}
	}
	exp := epoch(time.Now().Add(s.ttl()))
	var data []map[string]any
	for _, id := range ids {
		data = append(data, map[string]any{
			"authorizationToken": s.Token(),
			"expiresAt":          exp,
			"proxyEndpoint":      "https://" + s.o.RegistryHost(id, region),
		})
	}
	return map[string]any{"authorizationData": data}
}

func (s *Server) publicToken() any {
	return map[string]any{"authorizationData": map[string]any{
		"authorizationToken": s.Token(),
		"expiresAt":          epoch(time.Now().Add(s.ttl())),
	}}
}

var repoNameRE = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

func (s *Server) repoJSON(r *Repository) map[string]any {
	return map[string]any{
		"repositoryArn":              fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", r.Region, r.Account, r.Name),
		"registryId":                 r.Account,
		"repositoryName":             r.Name,
		"repositoryUri":              s.o.RegistryHost(r.Account, r.Region) + "/" + r.Name,
		"createdAt":                  epoch(r.CreatedAt),
		"imageTagMutability":         "MUTABLE",
		"imageScanningConfiguration": map[string]any{"scanOnPush": false},
		"encryptionConfiguration":    map[string]any{"encryptionType": "AES256"},
	}
}

func notFound(account, name string) error {
	return newError(http.StatusBadRequest, "RepositoryNotFoundException",
		"The repository with name '%s' does not exist in the registry with id '%s'", name, account)
}

func (s *Server) describeRepositories(in map[string]any, account, region string) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	if names, ok := in["repositoryNames"].([]any); ok && len(names) > 0 {
		for _, n := range names {
			name, _ := n.(string)
			r, ok := s.repo[account+"/"+region+"/"+name]
			if !ok {
				return nil, notFound(account, name)
			}
			out = append(out, s.repoJSON(r))
		}
	} else {
		prefix := account + "/" + region + "/"
		for k, r := range s.repo {
			if strings.HasPrefix(k, prefix) {
				out = append(out, s.repoJSON(r))
			}
		}
		slices.SortFunc(out, func(a, b map[string]any) int {
			return strings.Compare(a["repositoryName"].(string), b["repositoryName"].(string))
		})
	}
	if out == nil {
		out = []map[string]any{}
	}
	return map[string]any{"repositories": out}, nil
}

func (s *Server) createRepository(in map[string]any, account, region string) (any, error) {
	name, _ := in["repositoryName"].(string)
	if len(name) < 2 || len(name) > 256 || !repoNameRE.MatchString(name) {
		return nil, newError(http.StatusBadRequest, "InvalidParameterException",
			"Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '%s''", repoNameRE)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := account + "/" + region + "/" + name
	if _, ok := s.repo[key]; ok {
		return nil, newError(http.StatusBadRequest, "RepositoryAlreadyExistsException",
			"The repository with name '%s' already exists in the registry with id '%s'", name, account)
	}
	r := &Repository{Account: account, Region: region, Name: name, CreatedAt: time.Now()}
	s.repo[key] = r
	return map[string]any{"repository": s.repoJSON(r)}, nil
}

func (s *Server) putLifecyclePolicy(in map[string]any, account, region string) (any, error) {
	name, _ := in["repositoryName"].(string)
	text, _ := in["lifecyclePolicyText"].(string)
	var policy struct {
		Rules []json.RawMessage `json:"rules"`
	}
	if err := json.Unmarshal([]byte(text), &policy); err != nil || len(policy.Rules) == 0 {
		return nil, newError(http.StatusBadRequest, "InvalidParameterException",
			"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure'")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repo[account+"/"+region+"/"+name]
	if !ok {
		return nil, notFound(account, name)
	}
	r.LifecyclePolicy = text
	return map[string]any{"registryId": account, "repositoryName": name, "lifecyclePolicyText": text}, nil
}
