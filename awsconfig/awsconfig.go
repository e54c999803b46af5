// Package awsconfig is the one AWS client setup of dockhand-cloud, shared
// by every AWS control-plane call (ECR tokens, the ECR cache repository,
// cached-image repositories, EC2 fleet discovery).
//
// The configuration is aws-sdk-go-v2's default chain: credentials from the
// environment, shared config and profiles, web identity, ECS container
// credentials or IMDSv2; endpoints from AWS_ENDPOINT_URL and the
// per-service AWS_ENDPOINT_URL_<SERVICE> (ECR, ECR_PUBLIC, EC2) or a
// profile's endpoint_url. The SDK reads dockhand-cloud's own environment,
// which its parent chose: the job's for ECR tokens and cached-image, only
// remote.ec2_endpoint_url as AWS_ENDPOINT_URL_EC2 for fleet discovery. What
// a call sets on top (its region, its retry policy) is a Settings.
//
// It links aws-sdk-go-v2: only dockhand-cloud's packages import it.
package awsconfig

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Settings are what one call sets over the default chain.
type Settings struct {
	// Region is the region asked ("" leaves the chain's: AWS_REGION,
	// AWS_DEFAULT_REGION, the profile's region).
	Region string
	// RegionFromIMDS: with no region from the call or the chain, ask the
	// instance metadata service (IMDSv2; AWS_EC2_METADATA_SERVICE_ENDPOINT
	// and AWS_EC2_METADATA_DISABLED apply), as on an EC2 instance whose
	// region no variable names yet.
	RegionFromIMDS bool
	// Retryer, when set, replaces the SDK's standard retryer (and with it
	// AWS_MAX_ATTEMPTS and AWS_RETRY_MODE).
	Retryer func() aws.Retryer
}

// Load builds the AWS configuration for one call. Credentials are
// retrieved later, when a client first signs a request (or the caller
// asks cfg.Credentials).
func Load(ctx context.Context, s Settings) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.RegionFromIMDS {
		opts = append(opts, config.WithEC2IMDSRegion())
	}
	if s.Retryer != nil {
		opts = append(opts, config.WithRetryer(s.Retryer))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return cfg, nil
}
