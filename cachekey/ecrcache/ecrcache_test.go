package ecrcache

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/test/ecrapi"
)

const (
	key    = "AKIAECRCACHETEST0001"
	secret = "ecr-cache-test-secret"
)

// fake starts the fake ECR API and points the SDK's default chain at it
// through the environment, as an operator would (so: not parallel). The
// key may do what allow lists (nil: everything).
func fake(t *testing.T, allow ...string) *ecrapi.Server {
	t.Helper()
	o := ecrapi.Options{Keys: map[string]string{key: secret}, Password: "unused"}
	if allow != nil {
		o.Allow = map[string][]string{key: allow}
	}
	s, err := ecrapi.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": "/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_ECR": s.URL,
		"AWS_REGION": "", "AWS_DEFAULT_REGION": "",
	} {
		t.Setenv(k, v)
	}
	return s
}

func TestEnsureCreatesOnceWithLifecyclePolicy(t *testing.T) {
	s := fake(t)
	repo := "123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache/web"
	out, err := Ensure(t.Context(), repo, 14)
	if err != nil || !out.Created || out.Missing != nil {
		t.Fatalf("Ensure = %+v, %v; want created", out, err)
	}
	r, ok := s.Repository("123456789012", "eu-west-1", "build-cache/web")
	if !ok {
		t.Fatalf("the fake has no repository build-cache/web in 123456789012/eu-west-1: %+v", s.Log())
	}
	var policy struct {
		Rules []struct {
			RulePriority int `json:"rulePriority"`
			Selection    struct {
				TagStatus   string `json:"tagStatus"`
				CountType   string `json:"countType"`
				CountNumber int    `json:"countNumber"`
			} `json:"selection"`
			Action struct{ Type string } `json:"action"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(r.LifecyclePolicy), &policy); err != nil {
		t.Fatalf("lifecycle policy %q: %v", r.LifecyclePolicy, err)
	}
	last := policy.Rules[len(policy.Rules)-1]
	if len(policy.Rules) != 2 || last.Selection.TagStatus != "any" || last.Selection.CountType != "sinceImagePushed" ||
		last.Selection.CountNumber != 14 || last.Action.Type != "expire" || last.RulePriority <= policy.Rules[0].RulePriority {
		t.Errorf("lifecycle policy = %+v, want untagged after 1 day, then anything not pushed for 14 days (the any rule last)", policy)
	}
	out, err = Ensure(t.Context(), repo, 30)
	if err != nil || out.Created {
		t.Fatalf("second Ensure = %+v, %v; want it to exist", out, err)
	}
	if r, _ := s.Repository("123456789012", "eu-west-1", "build-cache/web"); !strings.Contains(r.LifecyclePolicy, `"countNumber":30`) {
		t.Errorf("a changed max age was not applied: %s", r.LifecyclePolicy)
	}
	if n := s.Calls(ecrapi.OpCreateRepository); n != 2 {
		t.Errorf("CreateRepository calls = %d, want 2", n)
	}
}

func TestEnsureErrors(t *testing.T) {
	s := fake(t)
	if _, err := Ensure(t.Context(), "reg.example/cache", 14); err == nil || !strings.Contains(err.Error(), "not an ECR repository") {
		t.Errorf("non-ECR repository: %v", err)
	}
	if _, err := Ensure(t.Context(), "123456789012.dkr.ecr.eu-west-1.amazonaws.com/c", 0); err == nil {
		t.Errorf("max age 0 accepted")
	}
	s.FailNext(4) // the SDK's three attempts at CreateRepository, and more
	_, err := Ensure(t.Context(), "123456789012.dkr.ecr.eu-west-1.amazonaws.com/down", 14)
	if err == nil || !strings.Contains(err.Error(), "ServerException") || !strings.Contains(err.Error(), "ecr:CreateRepository down in eu-west-1") {
		t.Errorf("ECR failing: %v, want the API's error naming the call", err)
	}
}

// TestEnsureWithTheStacksPolicies: what each Elastic CI Stack
// ECRAccessPolicy lets Ensure do, the fake refusing as IAM does: poweruser
// can neither create the repository nor put its lifecycle policy (one
// made by someone else is used as it is), the -pullthrough values can
// create it but not put the policy, full can do both; another account's
// registry is refused whatever the policy.
func TestEnsureWithTheStacksPolicies(t *testing.T) {
	const repo = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache/web"
	for _, tc := range []struct {
		policy   string
		existing bool
		repo     string
		created  bool
		missing  []string
	}{
		{"full", false, repo, true, nil},
		{"poweruser", false, repo, false, []string{cloud.ECRCreateRepository}},
		{"poweruser", true, repo, false, []string{cloud.ECRPutLifecyclePolicy}},
		{"poweruser-pullthrough", false, repo, true, []string{cloud.ECRPutLifecyclePolicy}},
		{"readonly-pullthrough", false, repo, true, []string{cloud.ECRPutLifecyclePolicy}},
		{"full", false, "210987654321.dkr.ecr.eu-west-1.amazonaws.com/build-cache/web", false, []string{cloud.ECRCreateRepository}},
	} {
		s := fake(t, ecrapi.StackPolicy(tc.policy)...)
		if tc.existing {
			s.AddRepository("123456789012", "eu-west-1", "build-cache/web")
		}
		out, err := Ensure(t.Context(), tc.repo, 14)
		if err != nil || out.Created != tc.created || !slices.Equal(out.Missing, tc.missing) {
			t.Errorf("%s (repository there: %v) on %s: %+v, %v; want created %v, missing %v", tc.policy, tc.existing, tc.repo, out, err, tc.created, tc.missing)
		}
		_, there := s.Repository("123456789012", "eu-west-1", "build-cache/web")
		if there != (tc.created || tc.existing) {
			t.Errorf("%s: the repository is there: %v", tc.policy, there)
		}
	}
}
