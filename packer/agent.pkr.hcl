# The Elastic CI Stack agent AMI with dockhand baked in: built on top of the
# stack's own published AMI, one source per architecture.
#
#   make release                          # build/linux-{amd64,arm64}/
#   packer init packer/plugins.pkr.hcl    # Packer >= 1.7 (see plugins.pkr.hcl)
#   packer build -only=amazon-ebs.amd64 -var region=eu-west-1 packer/agent.pkr.hcl
#
# The image build downloads nothing: the binaries, the scripts, the hooks and
# the optional buildctl, rootlesskit and Namespace CLI all come from this machine. Walkthrough:
# docs/install.md.

variable "region" {
  type        = string
  description = "AWS region to build in; the AMI lands there."
  default     = "us-east-1"
}

variable "source_ami_owner" {
  type        = string
  description = "Account that publishes the Elastic CI Stack AMIs (check the AWSRegion2AMI mapping of the stack version you run)."
  default     = "172840064832"
}

variable "source_ami_name" {
  type        = map(string)
  description = "Name filter of the stack's AMI per architecture; the newest match is used. Pin a full name to follow one stack release."
  default = {
    amd64 = "buildkite-stack-linux-amazonlinux2023-x86_64-*"
    arm64 = "buildkite-stack-linux-amazonlinux2023-arm64-*"
  }
}

variable "instance_type" {
  type = map(string)
  default = {
    amd64 = "m7a.large"
    arm64 = "m7g.large"
  }
}

variable "ami_name_prefix" {
  type    = string
  default = "dockhand-elastic-stack"
}

variable "ami_users" {
  type        = list(string)
  description = "Accounts the AMI is shared with."
  default     = []
}

variable "subnet_id" {
  type        = string
  description = "Subnet for the build instance; empty: the default VPC."
  default     = ""
}

variable "ssh_username" {
  type    = string
  default = "ec2-user"
}

variable "build_dir" {
  type        = string
  description = "Output of `make release`, holding linux-amd64/ and linux-arm64/ (each dockhand and dockhand-cloud); empty: the repository's build/."
  default     = ""
}

variable "hooks_dir" {
  type        = string
  description = "dockhand's agent hooks; empty: the repository's hooks/."
  default     = ""
}

variable "agent_user" {
  type        = string
  description = "The agent user that owns dockhand's state dir (the stack's is buildkite-agent)."
  default     = "buildkite-agent"
}

variable "buildctl" {
  type        = map(string)
  description = "Optional buildctl binary per architecture, e.g. { amd64 = \"dist/buildctl.amd64\" }; a missing or empty entry: none."
  default     = {}
}

variable "rootlesskit" {
  type        = map(string)
  description = "Optional rootlesskit binary per architecture (go install github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit), for the embedded builder of the unprivileged agent; a missing or empty entry: none."
  default     = {}
}

variable "nsc_tarball" {
  type        = map(string)
  description = "Optional Namespace CLI release tarball (nsc, docker-credential-nsc) per architecture; a missing or empty entry: none."
  default     = {}
}

locals {
  stamp     = formatdate("YYYYMMDD-hhmmss", timestamp())
  build_dir = var.build_dir != "" ? var.build_dir : "${path.root}/../build"
  hooks_dir = var.hooks_dir != "" ? var.hooks_dir : "${path.root}/../hooks"
  # Packer has no conditional provisioners: an optional file that was not
  # given is uploaded as this empty placeholder, which the install step skips.
  none = "${path.root}/files/not-given"
  tags = {
    Component = "dockhand"
    Source    = "packer/agent.pkr.hcl"
  }
}

# What both architectures share; the build block names one source per
# architecture with what differs.
source "amazon-ebs" "stack" {
  region       = var.region
  subnet_id    = var.subnet_id
  ssh_username = var.ssh_username
  ami_users    = var.ami_users
  tags         = local.tags
  run_tags     = local.tags
}

build {
  source "source.amazon-ebs.stack" {
    name          = "amd64"
    instance_type = var.instance_type["amd64"]
    ami_name      = "${var.ami_name_prefix}-x86_64-${local.stamp}"
    source_ami_filter {
      filters = {
        name                = var.source_ami_name["amd64"]
        architecture        = "x86_64"
        root-device-type    = "ebs"
        virtualization-type = "hvm"
      }
      owners      = [var.source_ami_owner]
      most_recent = true
    }
  }

  source "source.amazon-ebs.stack" {
    name          = "arm64"
    instance_type = var.instance_type["arm64"]
    ami_name      = "${var.ami_name_prefix}-arm64-${local.stamp}"
    source_ami_filter {
      filters = {
        name                = var.source_ami_name["arm64"]
        architecture        = "arm64"
        root-device-type    = "ebs"
        virtualization-type = "hvm"
      }
      owners      = [var.source_ami_owner]
      most_recent = true
    }
  }

  provisioner "shell" {
    inline = [
      "rm -rf /var/tmp/dockhand",
      "mkdir -p /var/tmp/dockhand/bin /var/tmp/dockhand/scripts /var/tmp/dockhand/files /var/tmp/dockhand/hooks /var/tmp/dockhand/extra",
    ]
  }

  # The layout of a release tarball: bin/ scripts/ files/ hooks/.
  provisioner "file" {
    source      = "${local.build_dir}/linux-${source.name}/"
    destination = "/var/tmp/dockhand/bin"
  }

  provisioner "file" {
    source      = "${path.root}/scripts/"
    destination = "/var/tmp/dockhand/scripts"
  }

  provisioner "file" {
    source      = "${path.root}/files/"
    destination = "/var/tmp/dockhand/files"
  }

  provisioner "file" {
    source      = "${local.hooks_dir}/"
    destination = "/var/tmp/dockhand/hooks"
  }

  provisioner "file" {
    source      = lookup(var.buildctl, source.name, "") != "" ? var.buildctl[source.name] : local.none
    destination = "/var/tmp/dockhand/extra/buildctl"
  }

  provisioner "file" {
    source      = lookup(var.rootlesskit, source.name, "") != "" ? var.rootlesskit[source.name] : local.none
    destination = "/var/tmp/dockhand/extra/rootlesskit"
  }

  provisioner "file" {
    source      = lookup(var.nsc_tarball, source.name, "") != "" ? var.nsc_tarball[source.name] : local.none
    destination = "/var/tmp/dockhand/extra/nsc.tar.gz"
  }

  # One install step, the same script as a manual install. The agent is not
  # running during the image build: the stack starts it at boot, with the
  # drop-in already in place.
  provisioner "shell" {
    environment_vars = ["AGENT_USER=${var.agent_user}"]
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} bash {{ .Path }}"
    remote_folder    = "/var/tmp"
    inline = [
      "set -euo pipefail",
      "cd /var/tmp/dockhand",
      "extra=()",
      "if [ -s extra/buildctl ]; then extra+=(--buildctl extra/buildctl); fi",
      "if [ -s extra/rootlesskit ]; then extra+=(--rootlesskit extra/rootlesskit); fi",
      "if [ -s extra/nsc.tar.gz ]; then extra+=(--nsc-tarball extra/nsc.tar.gz); fi",
      "bash scripts/install-dockhand.sh --user \"$AGENT_USER\" \"$${extra[@]}\"",
      "# The drop-in must attach to the stack's unit and systemd must read it.",
      "systemctl cat buildkite-agent.service >/dev/null",
      "systemctl show --property=Environment buildkite-agent.service | grep -q BUILDKITE_BOOTSTRAP_SCRIPT_PATH=/usr/local/bin/dockhand",
      "/usr/local/bin/dockhand version",
      "/usr/local/bin/dockhand-cloud version",
      "rm -rf /var/tmp/dockhand",
    ]
  }
}
