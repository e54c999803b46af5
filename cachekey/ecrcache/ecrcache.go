// Package ecrcache makes the ECR repository the registry cache backend
// writes to: created on first use, with a lifecycle policy that expires
// cache nobody wrote for N days. It uses aws-sdk-go-v2 (heavy): only
// dockhand-cloud imports it, and the bootstrap runs `dockhand-cloud
// ecr-cache-repo` once per pipeline and host.
package ecrcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/dockhand-ci/dockhand/awsconfig"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// LifecyclePolicy expires what the cache no longer uses: a cache manifest
// replaced by a newer export (untagged) after a day, and any ref not written
// for days days.
func LifecyclePolicy(days int) string {
	return fmt.Sprintf(`{"rules":[`+
		`{"rulePriority":1,"description":"dockhand: cache manifests replaced by a newer export",`+
		`"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}},`+
		`{"rulePriority":2,"description":"dockhand: cache not written for %d days",`+
		`"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":%d},"action":{"type":"expire"}}]}`,
		days, days)
}

// Split reads HOST/NAME into the ECR registry and the repository name.
func Split(repository string) (hosts.Registry, string, error) {
	host, name, ok := strings.Cut(repository, "/")
	reg := hosts.Parse(host)
	if !ok || name == "" || reg.Kind != hosts.ECR {
		return reg, "", fmt.Errorf("%q is not an ECR repository (ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME)", repository)
	}
	return reg, name, nil
}

// Outcome is what Ensure did, or could not do for want of a permission.
type Outcome struct {
	Created bool
	// Missing are the IAM actions the caller was denied that the cache
	// needs: ecr:CreateRepository (the repository does not exist, so the
	// cache has nowhere to go), ecr:PutLifecyclePolicy (the repository is
	// there, without expiry).
	Missing []string
}

// Ensure creates the repository if it is missing and puts the lifecycle
// policy on it. A denied call is not an error but an Outcome.Missing
// action: when creating is denied, a repository someone else made is used
// as it is. AWS credentials and endpoints come from the environment (the
// SDK's default chain, AWS_ENDPOINT_URL_ECR); nothing secret is an argument.
func Ensure(ctx context.Context, repository string, maxAgeDays int) (Outcome, error) {
	reg, name, err := Split(repository)
	if err != nil {
		return Outcome{}, err
	}
	if maxAgeDays < 1 {
		return Outcome{}, fmt.Errorf("max age %d days: want at least 1", maxAgeDays)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg, err := awsconfig.Load(ctx, awsconfig.Settings{Region: reg.Region})
	if err != nil {
		return Outcome{}, err
	}
	client := ecr.NewFromConfig(cfg)
	var out Outcome
	_, err = client.CreateRepository(ctx, &ecr.CreateRepositoryInput{
		RepositoryName: aws.String(name),
		RegistryId:     aws.String(reg.Account),
		Tags:           []types.Tag{{Key: aws.String("created-by"), Value: aws.String("dockhand")}},
	})
	var exists *types.RepositoryAlreadyExistsException
	switch {
	case err == nil:
		out.Created = true
	case errors.As(err, &exists):
	case denied(err):
		// Someone with the permission may have made it.
		_, derr := client.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RegistryId: aws.String(reg.Account), RepositoryNames: []string{name}})
		if derr != nil {
			out.Missing = append(out.Missing, cloud.ECRCreateRepository)
			return out, nil
		}
	default:
		return Outcome{}, fmt.Errorf("%s %s in %s: %w", cloud.ECRCreateRepository, name, reg.Region, err)
	}
	_, err = client.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{
		RepositoryName:      aws.String(name),
		RegistryId:          aws.String(reg.Account),
		LifecyclePolicyText: aws.String(LifecyclePolicy(maxAgeDays)),
	})
	switch {
	case denied(err):
		out.Missing = append(out.Missing, cloud.ECRPutLifecyclePolicy)
	case err != nil:
		return out, fmt.Errorf("%s on %s: %w", cloud.ECRPutLifecyclePolicy, name, err)
	}
	return out, nil
}

// denied reports whether IAM refused a call.
func denied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException"
}
