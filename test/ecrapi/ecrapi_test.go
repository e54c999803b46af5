package ecrapi

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/smithy-go"
)

const (
	testKey    = "AKIAFAKEECRAPI000001"
	testSecret = "fake-secret-for-the-ecr-fake"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start(Options{Keys: map[string]string{testKey: testSecret}, Password: "registry-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// client is the real SDK's ECR client pointed at the fake.
func client(s *Server, key, secret string) *ecr.Client {
	return ecr.New(ecr.Options{
		Region:       "us-west-2",
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 4
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		}),
	})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestGetAuthorizationTokenWithTheRealSDK(t *testing.T) {
	s := start(t)
	//lint:ignore SA1019 registry/ecr sends the deprecated RegistryIds (see there), so the double must answer it
	in := &ecr.GetAuthorizationTokenInput{RegistryIds: []string{"210987654321"}}
	out, err := client(s, testKey, testSecret).GetAuthorizationToken(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AuthorizationData) != 1 {
		t.Fatalf("authorization data: %+v", out.AuthorizationData)
	}
	d := out.AuthorizationData[0]
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
	if string(raw) != "AWS:registry-password-1" {
		t.Errorf("token decodes to %q", raw)
	}
	if got := aws.ToString(d.ProxyEndpoint); got != "https://210987654321.dkr.ecr.us-west-2.amazonaws.com" {
		t.Errorf("proxyEndpoint = %q", got)
	}
	if left := time.Until(aws.ToTime(d.ExpiresAt)); left < 11*time.Hour || left > 12*time.Hour {
		t.Errorf("token expires in %s, want about 12h", left)
	}
	log := s.Log()
	if len(log) != 1 || log[0].AccessKeyID != testKey || log[0].Region != "us-west-2" || log[0].Service != "ecr" ||
		len(log[0].RegistryIDs) != 1 || log[0].RegistryIDs[0] != "210987654321" {
		t.Errorf("log = %+v", log)
	}
}

func TestSignatureIsChecked(t *testing.T) {
	s := start(t)
	_, err := client(s, testKey, "not-the-secret").GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if apiCode(err) != "InvalidSignatureException" {
		t.Errorf("wrong secret: %v, want InvalidSignatureException", err)
	}
	_, err = client(s, "AKIAUNKNOWN000000000", testSecret).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if apiCode(err) != "UnrecognizedClientException" {
		t.Errorf("unknown key: %v, want UnrecognizedClientException", err)
	}
	if n := s.Calls(OpGetAuthorizationToken); n != 0 {
		t.Errorf("refused requests were counted as calls: %d", n)
	}
}

func TestInjectedFailuresAreRetriedBySDK(t *testing.T) {
	s := start(t)
	s.ThrottleNext(1)
	s.FailNext(1)
	if _, err := client(s, testKey, testSecret).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{}); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls(OpGetAuthorizationToken); n != 3 {
		t.Errorf("calls = %d, want 3 (throttled, 500, answered)", n)
	}
	log := s.Log()
	if log[0].Injected != "ThrottlingException" || log[1].Injected != "ServerException" || log[2].Injected != "" {
		t.Errorf("log = %+v", log)
	}
	s.DenyNext(1)
	_, err := client(s, testKey, testSecret).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if apiCode(err) != "AccessDeniedException" || s.Calls(OpGetAuthorizationToken) != 4 {
		t.Errorf("denied: %v after %d calls, want AccessDeniedException not retried", err, s.Calls(OpGetAuthorizationToken))
	}
}

func TestRepositoriesAndLifecyclePolicy(t *testing.T) {
	s := start(t)
	c := client(s, testKey, testSecret)
	ctx := t.Context()
	_, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"cache/app"}})
	var nf *types.RepositoryNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("describe a missing repo: %v, want RepositoryNotFoundException", err)
	}
	created, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("cache/app")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(created.Repository.RepositoryUri); got != "123456789012.dkr.ecr.us-west-2.amazonaws.com/cache/app" {
		t.Errorf("repositoryUri = %q", got)
	}
	_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("cache/app")})
	var exists *types.RepositoryAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Errorf("create twice: %v, want RepositoryAlreadyExistsException", err)
	}
	_, err = c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("Bad_Name")})
	var bad *types.InvalidParameterException
	if !errors.As(err, &bad) {
		t.Errorf("create a bad name: %v, want InvalidParameterException", err)
	}
	desc, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
	if err != nil || len(desc.Repositories) != 1 || aws.ToString(desc.Repositories[0].RepositoryName) != "cache/app" {
		t.Fatalf("describe all: %+v, %v", desc, err)
	}
	policy := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`
	if _, err := c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("cache/app"), LifecyclePolicyText: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	if r, ok := s.Repository("123456789012", "us-west-2", "cache/app"); !ok || r.LifecyclePolicy != policy {
		t.Errorf("stored repository = %+v", r)
	}
	_, err = c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("nope"), LifecyclePolicyText: aws.String(policy)})
	if !errors.As(err, &nf) {
		t.Errorf("policy on a missing repo: %v", err)
	}
	_, err = c.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("cache/app"), LifecyclePolicyText: aws.String("{}")})
	if !errors.As(err, &bad) {
		t.Errorf("an empty policy: %v", err)
	}
	for op, want := range map[string]int{OpDescribeRepositories: 2, OpCreateRepository: 3, OpPutLifecyclePolicy: 3} {
		if n := s.Calls(op); n != want {
			t.Errorf("%s calls = %d, want %d", op, n, want)
		}
	}
}

func TestECRPublicToken(t *testing.T) {
	s := start(t)
	c := ecrpublic.New(ecrpublic.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, ""),
	})
	out, err := c.GetAuthorizationToken(t.Context(), &ecrpublic.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.AuthorizationData.AuthorizationToken) != s.Token() {
		t.Errorf("public token = %q", aws.ToString(out.AuthorizationData.AuthorizationToken))
	}
	if n := s.Calls(OpPublicGetAuthorizationToken); n != 1 {
		t.Errorf("public calls = %d", n)
	}
	// A private-ECR operation signed for ecr-public is refused.
	if log := s.Log(); log[0].Service != "ecr-public" {
		t.Errorf("signing name = %q", log[0].Service)
	}
}

func TestNotJSON11(t *testing.T) {
	s := start(t)
	resp, err := (&httpClient{}).post(s.URL, "application/json", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp, "SerializationException") {
		t.Errorf("answer = %s", resp)
	}
}

type httpClient struct{}

func (httpClient) post(url, contentType, body string) (string, error) {
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestIAMAsTheStackGrantsIt: a key limited to the stack's poweruser policy
// gets tokens and describes repositories but may not create one nor put a
// lifecycle policy: AccessDeniedException (HTTP 400, not retried), worded
// as IAM words it; a repository call on another account's registry is
// refused even for ecr:*.
func TestIAMAsTheStackGrantsIt(t *testing.T) {
	s, err := Start(Options{Keys: map[string]string{testKey: testSecret, "AKIAFAKEECRAPIFULL01": testSecret}, Password: "p",
		Allow: map[string][]string{testKey: StackPolicy("poweruser"), "AKIAFAKEECRAPIFULL01": StackPolicy("full")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx := t.Context()
	power, full := client(s, testKey, testSecret), client(s, "AKIAFAKEECRAPIFULL01", testSecret)
	if _, err := power.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{}); err != nil {
		t.Errorf("poweruser GetAuthorizationToken: %v", err)
	}
	_, err = power.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("cache")})
	want := "User: arn:aws:sts::123456789012:assumed-role/BuildkiteAgentRole/" + testKey + " is not authorized to perform: ecr:CreateRepository on resource: " +
		"arn:aws:ecr:us-west-2:123456789012:repository/cache because no identity-based policy allows the ecr:CreateRepository action"
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" || ae.ErrorMessage() != want {
		t.Errorf("poweruser CreateRepository: %v, want AccessDeniedException: %s", err, want)
	}
	if n := s.Calls(OpCreateRepository); n != 1 {
		t.Errorf("%d CreateRepository calls: a denial is not retried", n)
	}
	if _, err := full.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("cache")}); err != nil {
		t.Fatalf("full CreateRepository: %v", err)
	}
	if _, err := power.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"cache"}}); err != nil {
		t.Errorf("poweruser DescribeRepositories: %v", err)
	}
	_, err = power.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("cache"), LifecyclePolicyText: aws.String(`{"rules":[{}]}`)})
	if apiCode(err) != "AccessDeniedException" {
		t.Errorf("poweruser PutLifecyclePolicy: %v", err)
	}
	_, err = full.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("cache"), RegistryId: aws.String("210987654321")})
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" ||
		!strings.HasSuffix(ae.ErrorMessage(), "on resource: arn:aws:ecr:us-west-2:210987654321:repository/cache because no resource-based policy allows the ecr:CreateRepository action") {
		t.Errorf("another account's registry: %v", err)
	}
}
