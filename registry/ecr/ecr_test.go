package ecr

import (
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/registry"
	"github.com/dockhand-ci/dockhand/registry/hosts"
	"github.com/dockhand-ci/dockhand/test/ecrapi"
)

const (
	key    = "AKIAECRPKGTEST000001"
	secret = "ecr-package-test-secret"
)

// fake starts the fake ECR API and points the SDK's default chain at it
// through endpointVar (not parallel: the SDK reads the process environment).
func fake(t *testing.T, endpointVar string) *ecrapi.Server {
	t.Helper()
	return ecrapi.StartForSDK(t, ecrapi.Options{Keys: map[string]string{key: secret}, Password: "pw-from-the-fake"}, endpointVar)
}

func fast(timeout time.Duration) Options {
	return Options{Timeout: timeout, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
}

func TestFetchPrivate(t *testing.T) {
	s := fake(t, "AWS_ENDPOINT_URL_ECR")
	for _, host := range []string{
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
		"123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
		"123456789012.dkr-ecr.us-west-2.on.aws",
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
	} {
		reg := hosts.Parse(host)
		reply, err := Fetch(t.Context(), reg, fast(10*time.Second))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if reply.Username != "AWS" || reply.Secret != "pw-from-the-fake" || reply.KeyID != registry.KeyID(key) {
			t.Errorf("%s: reply = %+v", host, reply)
		}
		if left := time.Until(reply.ExpiresAt); left < 11*time.Hour {
			t.Errorf("%s: expires in %s", host, left)
		}
		last := s.Log()[len(s.Log())-1]
		if last.Region != reg.Region || len(last.RegistryIDs) != 1 || last.RegistryIDs[0] != "123456789012" || last.AccessKeyID != key {
			t.Errorf("%s: call = %+v", host, last)
		}
	}
}

func TestFetchPublicAndGenericEndpoint(t *testing.T) {
	s := fake(t, "AWS_ENDPOINT_URL")
	reply, err := Fetch(t.Context(), hosts.Parse("public.ecr.aws"), fast(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if reply.Secret != "pw-from-the-fake" || reply.ProxyEndpoint != "https://public.ecr.aws" {
		t.Errorf("reply = %+v", reply)
	}
	if s.Calls(ecrapi.OpPublicGetAuthorizationToken) != 1 || s.Log()[0].Region != "us-east-1" {
		t.Errorf("log = %+v", s.Log())
	}
}

func TestFetchRetriesThrottlingAndServerErrors(t *testing.T) {
	s := fake(t, "AWS_ENDPOINT_URL_ECR")
	s.ThrottleNext(2)
	s.FailNext(1)
	if _, err := Fetch(t.Context(), hosts.Parse("123456789012.dkr.ecr.us-east-1.amazonaws.com"), fast(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls(ecrapi.OpGetAuthorizationToken); n != 4 {
		t.Errorf("calls = %d, want 4 (2 throttled, 1 failed, 1 answered)", n)
	}
}

func TestFetchGivesUpWithinItsBound(t *testing.T) {
	s := fake(t, "AWS_ENDPOINT_URL_ECR")
	s.ThrottleNext(1000)
	start := time.Now()
	o := Options{Timeout: 2 * time.Second, MaxAttempts: 1000, BaseBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	_, err := Fetch(t.Context(), hosts.Parse("123456789012.dkr.ecr.us-east-1.amazonaws.com"), o)
	took := time.Since(start)
	if err == nil {
		t.Fatal("a throttled-forever API gave a token")
	}
	if took > 4*time.Second {
		t.Errorf("gave up after %s, want about the 2s bound", took)
	}
	if n := s.Calls(ecrapi.OpGetAuthorizationToken); n < 3 {
		t.Errorf("only %d attempts within the bound", n)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error holds the secret key: %v", err)
	}
}

func TestFetchDoesNotRetryAccessDenied(t *testing.T) {
	s := fake(t, "AWS_ENDPOINT_URL_ECR")
	s.DenyNext(1)
	_, err := Fetch(t.Context(), hosts.Parse("123456789012.dkr.ecr.us-east-1.amazonaws.com"), fast(10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Errorf("err = %v", err)
	}
	if n := s.Calls(ecrapi.OpGetAuthorizationToken); n != 1 {
		t.Errorf("calls = %d, want 1", n)
	}
}

func TestFetchWithoutCredentials(t *testing.T) {
	fake(t, "AWS_ENDPOINT_URL_ECR")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err := Fetch(t.Context(), hosts.Parse("123456789012.dkr.ecr.us-east-1.amazonaws.com"), fast(5*time.Second))
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials") {
		t.Errorf("err = %v", err)
	}
}

func TestFetchRefusesOtherHosts(t *testing.T) {
	if _, err := Fetch(t.Context(), hosts.Parse("ghcr.io"), Options{}); err == nil {
		t.Error("fetched a token for ghcr.io")
	}
}
