package registry

import (
	"context"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// ECRTokenReply is `dockhand-cloud ecr-token`'s answer (package cloud).
type ECRTokenReply = cloud.ECRTokenReply

// FetchECR fetches a token for an ECR registry.
type FetchECR func(ctx context.Context, reg hosts.Registry) (ECRTokenReply, error)

// ExecECRToken returns a FetchECR that runs `dockhand-cloud ecr-token` (at
// path cloudPath) with env: the registry host goes in, not secret; the AWS
// credentials reach it through env, and the token comes back on a pipe.
func ExecECRToken(cloudPath string, env []string) FetchECR {
	return func(ctx context.Context, reg hosts.Registry) (ECRTokenReply, error) {
		var reply ECRTokenReply
		if err := cloud.Run(ctx, cloudPath, env, cloud.ECRToken, cloud.ECRTokenRequest{Registry: reg.Host}, &reply); err != nil {
			return ECRTokenReply{}, err
		}
		return reply, reply.Check()
	}
}
