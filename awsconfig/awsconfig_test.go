package awsconfig

import (
	"cmp"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
)

// TestLoad: the call's settings over the SDK's default chain, with the
// process environment the chain reads set per case (shared files and
// instance metadata out of the way).
func TestLoad(t *testing.T) {
	six := func() aws.Retryer { return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 6 }) }
	for _, c := range []struct {
		name     string
		settings Settings
		env      map[string]string
		region   string
		attempts int    // the attempts a client makes; 0: the SDK's default (3)
		base     string // cfg.BaseEndpoint, every service
		ecr, ec2 string // the endpoint an ECR or EC2 client is given
		err      string
	}{
		{name: "the call's region wins", settings: Settings{Region: "eu-west-1"}, env: map[string]string{"AWS_REGION": "us-east-1"},
			region: "eu-west-1"},
		{name: "no region: the environment's", env: map[string]string{"AWS_REGION": "us-east-2"}, region: "us-east-2"},
		{name: "no region: AWS_DEFAULT_REGION", env: map[string]string{"AWS_DEFAULT_REGION": "ap-south-1"}, region: "ap-south-1"},
		{name: "no region anywhere"},
		{name: "the call's retryer replaces AWS_MAX_ATTEMPTS", settings: Settings{Retryer: six},
			env: map[string]string{"AWS_MAX_ATTEMPTS": "2"}, attempts: 6},
		{name: "no retryer: AWS_MAX_ATTEMPTS", env: map[string]string{"AWS_MAX_ATTEMPTS": "4"}, attempts: 4},
		{name: "AWS_ENDPOINT_URL_ECR reaches ECR only (the fake ECR API)", settings: Settings{Region: "us-east-1"},
			env: map[string]string{"AWS_ENDPOINT_URL_ECR": "http://127.0.0.1:1"}, region: "us-east-1", ecr: "http://127.0.0.1:1"},
		{name: "AWS_ENDPOINT_URL_EC2 reaches EC2 only (remote.ec2_endpoint_url)",
			env: map[string]string{"AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:2"}, ec2: "http://127.0.0.1:2"},
		{name: "AWS_ENDPOINT_URL reaches every service", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:3"},
			base: "http://127.0.0.1:3", ecr: "http://127.0.0.1:3", ec2: "http://127.0.0.1:3"},
		{name: "configured endpoints ignored", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:3",
			"AWS_ENDPOINT_URL_ECR": "http://127.0.0.1:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}},
		{name: "a bad variable is an error", env: map[string]string{"AWS_MAX_ATTEMPTS": "many"},
			err: "loading the AWS configuration: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			isolate(t, c.env)
			cfg, err := Load(t.Context(), c.settings)
			if c.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), c.err) {
					t.Fatalf("Load = %v, want an error starting %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != c.region {
				t.Errorf("region %q, want %q", cfg.Region, c.region)
			}
			ecrOptions := ecr.NewFromConfig(cfg).Options()
			if got, want := ecrOptions.Retryer.MaxAttempts(), cmp.Or(c.attempts, retry.DefaultMaxAttempts); got != want {
				t.Errorf("max attempts %d, want %d", got, want)
			}
			if got := aws.ToString(cfg.BaseEndpoint); got != c.base {
				t.Errorf("base endpoint %q, want %q", got, c.base)
			}
			if got := aws.ToString(ecrOptions.BaseEndpoint); got != c.ecr {
				t.Errorf("ECR endpoint %q, want %q", got, c.ecr)
			}
			if got := aws.ToString(ec2.NewFromConfig(cfg).Options().BaseEndpoint); got != c.ec2 {
				t.Errorf("EC2 endpoint %q, want %q", got, c.ec2)
			}
		})
	}
}

// isolate clears every variable the chain reads that could change the
// result, then sets env (t.Setenv: the test cannot be parallel).
func isolate(t *testing.T, env map[string]string) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_ECR_PUBLIC",
		"AWS_ENDPOINT_URL_EC2", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", dir)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for k, v := range env {
		t.Setenv(k, v)
	}
}
