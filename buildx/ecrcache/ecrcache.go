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
	"github.com/dockhand-ci/dockhand/awsconfig"
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

// Ensure creates the repository if it is missing and puts the lifecycle
// policy on it. It reports whether it created the repository. AWS
// credentials and endpoints come from the environment (the SDK's default
// chain, AWS_ENDPOINT_URL_ECR); nothing secret is an argument.
func Ensure(ctx context.Context, repository string, maxAgeDays int) (bool, error) {
	reg, name, err := Split(repository)
	if err != nil {
		return false, err
	}
	if maxAgeDays < 1 {
		return false, fmt.Errorf("max age %d days: want at least 1", maxAgeDays)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg, err := awsconfig.Load(ctx, awsconfig.Settings{Region: reg.Region})
	if err != nil {
		return false, err
	}
	client := ecr.NewFromConfig(cfg)
	created := true
	_, err = client.CreateRepository(ctx, &ecr.CreateRepositoryInput{
		RepositoryName: aws.String(name),
		RegistryId:     aws.String(reg.Account),
		Tags:           []types.Tag{{Key: aws.String("created-by"), Value: aws.String("dockhand")}},
	})
	var exists *types.RepositoryAlreadyExistsException
	switch {
	case errors.As(err, &exists):
		created = false
	case err != nil:
		return false, fmt.Errorf("ecr:CreateRepository %s in %s: %w", name, reg.Region, err)
	}
	if _, err := client.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{
		RepositoryName:      aws.String(name),
		RegistryId:          aws.String(reg.Account),
		LifecyclePolicyText: aws.String(LifecyclePolicy(maxAgeDays)),
	}); err != nil {
		return created, fmt.Errorf("ecr:PutLifecyclePolicy on %s: %w", name, err)
	}
	return created, nil
}
