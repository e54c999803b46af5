//go:build tools

// Package ecrlogin pins the upstream Amazon ECR credential helper
// (docker-credential-ecr-login), which `make bench` compares dockhand's
// credential helper with. It is its own module so its AWS SDK versions do
// not move those of the other tools.
package ecrlogin

import _ "github.com/awslabs/amazon-ecr-credential-helper/ecr-login/cli/docker-credential-ecr-login"
