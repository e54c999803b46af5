package main

import (
	"context"

	"github.com/dockhand-ci/dockhand/cachekey/ecrcache"
	"github.com/dockhand-ci/dockhand/cloud"
)

// ecrCacheRepo is `dockhand-cloud ecr-cache-repo`: a
// cloud.ECRCacheRepoRequest on stdin; the registry cache backend's ECR
// repository, created if missing, with its lifecycle policy; whether it was
// created as a cloud.ECRCacheRepoReply on stdout.
var ecrCacheRepo = jsonCommand(func(ctx context.Context, req cloud.ECRCacheRepoRequest) (cloud.ECRCacheRepoReply, error) {
	out, err := ecrcache.Ensure(ctx, req.Repository, req.MaxAgeDays)
	return cloud.ECRCacheRepoReply{Created: out.Created, Missing: out.Missing}, err
})
