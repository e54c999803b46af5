package build

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/dockhand-ci/dockhand/awsconfig"
	"github.com/dockhand-ci/dockhand/cachedimage"
)

// LifecyclePolicy is the plugin's policy: expire every image pushed more
// than days ago.
func LifecyclePolicy(days int) string {
	return fmt.Sprintf(`{"rules":[{"rulePriority":1,"description":"Expire images older than %d days",`+
		`"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":%d},`+
		`"action":{"type":"expire"}}]}`, days, days)
}

// ensureECR returns the repository's URI, creating the repository (with
// ecr-tags) when it is missing, tagging an existing one, and applying the
// lifecycle policy every time, as the plugin does. The AWS credentials,
// endpoint settings (AWS_ENDPOINT_URL_ECR) and profile come from the job's
// environment through the SDK's default chain.
func ensureECR(ctx context.Context, o *cachedimage.Options, name string, warn func(string, ...any)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cfg, err := awsconfig.Load(ctx, awsconfig.Settings{Region: o.Region})
	if err != nil {
		return "", err
	}
	client := ecr.NewFromConfig(cfg)
	var tags []types.Tag
	for _, t := range o.ECRTags {
		tags = append(tags, types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	var uri string
	out, err := client.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
	var notFound *types.RepositoryNotFoundException
	switch {
	case errors.As(err, &notFound):
		created, err := client.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(name), Tags: tags})
		if err != nil {
			return "", fmt.Errorf("ecr:CreateRepository %s in %s: %w", name, o.Region, err)
		}
		uri = aws.ToString(created.Repository.RepositoryUri)
	case err != nil:
		return "", fmt.Errorf("ecr:DescribeRepositories %s in %s: %w", name, o.Region, err)
	case len(out.Repositories) == 0:
		return "", fmt.Errorf("ecr:DescribeRepositories %s in %s returned no repository", name, o.Region)
	default:
		repo := out.Repositories[0]
		uri = aws.ToString(repo.RepositoryUri)
		if len(tags) > 0 {
			if _, err := client.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: repo.RepositoryArn, Tags: tags}); err != nil {
				warn("ecr:TagResource on %s: %v (the repository keeps its tags)", name, err)
			}
		}
	}
	if uri == "" {
		return "", fmt.Errorf("ECR gave no URI for the repository %s", name)
	}
	// The plugin applies the policy on every run and ignores a failure (a
	// restricted role may not have ecr:PutLifecyclePolicy).
	if _, err := client.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{
		RepositoryName: aws.String(name), LifecyclePolicyText: aws.String(LifecyclePolicy(o.MaxAgeDays)),
	}); err != nil {
		warn("ecr:PutLifecyclePolicy on %s: %v (images are not expired by dockhand)", name, err)
	}
	return uri, nil
}
