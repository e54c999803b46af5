// Package ecr fetches Amazon ECR registry tokens with aws-sdk-go-v2: the
// default credential chain (environment, shared config and profiles, web
// identity, ECS container credentials, IMDSv2), the SDK's endpoint settings
// (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_ECR_PUBLIC,
// profile endpoint_url), region and registry id from the registry's
// hostname. Throttling, 5xx answers and connection errors are retried with
// jittered exponential backoff, within a bounded time.
//
// It is heavy (the SDK costs milliseconds of start-up): only
// cmd/dockhand-cloud imports it, and the job-path `dockhand` binary runs
// `dockhand-cloud ecr-token` when its shared token cache misses.
package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/dockhand-ci/dockhand/awsconfig"
	"github.com/dockhand-ci/dockhand/registry"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// Options bound a fetch. Zero values take the defaults.
type Options struct {
	Timeout     time.Duration // the whole fetch, retries included (default 30s)
	MaxAttempts int           // API attempts (default 6)
	BaseBackoff time.Duration // first retry's backoff ceiling (default 200ms)
	MaxBackoff  time.Duration // any retry's backoff ceiling (default 2s)
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	return o
}

// Fetch gets a token for reg, an ECR private or ECR Public registry.
func Fetch(ctx context.Context, reg hosts.Registry, o Options) (registry.ECRTokenReply, error) {
	o = o.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if reg.Kind != hosts.ECR && reg.Kind != hosts.ECRPublic {
		return registry.ECRTokenReply{}, fmt.Errorf("%q is not an ECR registry", reg.Host)
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Settings{Region: reg.Region, Retryer: func() aws.Retryer { return retryer(o) }})
	if err != nil {
		return registry.ECRTokenReply{}, err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return registry.ECRTokenReply{}, fmt.Errorf("no AWS credentials: %w", err)
	}
	var reply registry.ECRTokenReply
	if reg.Kind == hosts.ECRPublic {
		reply, err = public(ctx, cfg)
	} else {
		reply, err = private(ctx, cfg, reg)
	}
	if err != nil {
		return registry.ECRTokenReply{}, err
	}
	reply.KeyID = registry.KeyID(creds.AccessKeyID)
	return reply, reply.Check()
}

// retryer retries what the SDK's standard retryer does (throttling, 5xx,
// connection errors), with full-jitter exponential backoff and no retry
// quota: the fetch's timeout is the bound.
func retryer(o Options) aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = o.MaxAttempts
		so.MaxBackoff = o.MaxBackoff
		so.RateLimiter = ratelimit.None
		so.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
			ceiling := o.BaseBackoff << min(attempt-1, 16)
			if ceiling <= 0 || ceiling > o.MaxBackoff {
				ceiling = o.MaxBackoff
			}
			return rand.N(ceiling) + 1, nil
		})
	})
}

func private(ctx context.Context, cfg aws.Config, reg hosts.Registry) (registry.ECRTokenReply, error) {
	client := ecr.NewFromConfig(cfg, func(eo *ecr.Options) {
		// A FIPS registry host gets the FIPS API endpoint, unless an
		// endpoint was configured (the SDK refuses both together).
		if reg.FIPS && eo.BaseEndpoint == nil {
			eo.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
		}
	})
	// RegistryIds is deprecated because a token is no longer scoped to the
	// registries named: it works for every registry the principal may use.
	// It is still sent, as the upstream amazon-ecr-credential-helper does
	// with the current SDK: the reply's proxyEndpoint, which the token cache
	// records, is then the registry asked for (a cross-account registry
	// gets its own host back, not the caller's default registry).
	//lint:ignore SA1019 deliberate, as upstream: the reply then names the registry asked for (see above)
	out, err := client.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{RegistryIds: []string{reg.Account}})
	if err != nil {
		return registry.ECRTokenReply{}, fmt.Errorf("ecr:GetAuthorizationToken for %s in %s: %w", reg.Account, reg.Region, err)
	}
	if len(out.AuthorizationData) == 0 {
		return registry.ECRTokenReply{}, errors.New("ecr:GetAuthorizationToken returned no authorization data")
	}
	d := out.AuthorizationData[0]
	return decode(aws.ToString(d.AuthorizationToken), aws.ToTime(d.ExpiresAt), aws.ToString(d.ProxyEndpoint))
}

func public(ctx context.Context, cfg aws.Config) (registry.ECRTokenReply, error) {
	client := ecrpublic.NewFromConfig(cfg)
	out, err := client.GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
	if err != nil {
		return registry.ECRTokenReply{}, fmt.Errorf("ecr-public:GetAuthorizationToken: %w", err)
	}
	if out.AuthorizationData == nil {
		return registry.ECRTokenReply{}, errors.New("ecr-public:GetAuthorizationToken returned no authorization data")
	}
	d := out.AuthorizationData
	return decode(aws.ToString(d.AuthorizationToken), aws.ToTime(d.ExpiresAt), "https://"+hosts.ECRPublicHost)
}

// decode splits an authorization token, base64("USER:PASSWORD").
func decode(token string, expires time.Time, proxy string) (registry.ECRTokenReply, error) {
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return registry.ECRTokenReply{}, errors.New("the authorization token is not base64")
	}
	user, secret, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || secret == "" {
		return registry.ECRTokenReply{}, errors.New("the authorization token is not USER:PASSWORD")
	}
	if expires.IsZero() {
		return registry.ECRTokenReply{}, errors.New("the authorization token has no expiry")
	}
	return registry.ECRTokenReply{Username: user, Secret: secret, ProxyEndpoint: proxy, ExpiresAt: expires.UTC()}, nil
}
