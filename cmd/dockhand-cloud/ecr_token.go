package main

import (
	"context"
	"fmt"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/registry/ecr"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// ecrToken is `dockhand-cloud ecr-token`: a cloud.ECRTokenRequest on stdin,
// one ECR or ECR Public token as a cloud.ECRTokenReply on stdout (a pipe to
// the credential helper). Nothing secret comes in: the AWS credentials come
// from the environment the SDK's default chain reads.
var ecrToken = jsonCommand(func(ctx context.Context, req cloud.ECRTokenRequest) (cloud.ECRTokenReply, error) {
	reg := hosts.Parse(req.Registry)
	if reg.Kind != hosts.ECR && reg.Kind != hosts.ECRPublic {
		return cloud.ECRTokenReply{}, fmt.Errorf("registry %q is not an ECR or ECR Public registry host", req.Registry)
	}
	return ecr.Fetch(ctx, reg, ecr.Options{Timeout: req.Timeout})
})
