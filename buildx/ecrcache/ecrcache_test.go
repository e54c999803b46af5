package ecrcache

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/ecrapi"
)

const (
	key    = "AKIAECRCACHETEST0001"
	secret = "ecr-cache-test-secret"
)

// fake starts the fake ECR API and points the SDK's default chain at it
// through the environment, as an operator would (so: not parallel).
func fake(t *testing.T) *ecrapi.Server {
	t.Helper()
	s, err := ecrapi.Start(ecrapi.Options{Keys: map[string]string{key: secret}, Password: "unused"})
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
	created, err := Ensure(context.Background(), repo, 14)
	if err != nil || !created {
		t.Fatalf("Ensure = %v, %v; want created", created, err)
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
	created, err = Ensure(context.Background(), repo, 30)
	if err != nil || created {
		t.Fatalf("second Ensure = %v, %v; want it to exist", created, err)
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
	if _, err := Ensure(context.Background(), "reg.example/cache", 14); err == nil || !strings.Contains(err.Error(), "not an ECR repository") {
		t.Errorf("non-ECR repository: %v", err)
	}
	if _, err := Ensure(context.Background(), "123456789012.dkr.ecr.eu-west-1.amazonaws.com/c", 0); err == nil {
		t.Errorf("max age 0 accepted")
	}
	s.DenyNext(1)
	_, err := Ensure(context.Background(), "123456789012.dkr.ecr.eu-west-1.amazonaws.com/denied", 14)
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "ecr:CreateRepository denied") {
		t.Errorf("denied: %v, want the API's error naming the call", err)
	}
}
