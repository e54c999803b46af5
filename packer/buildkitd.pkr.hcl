# A remote BuildKit builder for dockhand's `remote` pool: Amazon Linux 2023
# with buildkitd and runc, listening on tcp://0.0.0.0:1234 with mutual TLS,
# its cache root on a data volume, GC sized from that volume. One source per
# architecture: an arm64 builder builds linux/arm64 natively.
#
#   packer init packer/plugins.pkr.hcl    # Packer >= 1.7 (see plugins.pkr.hcl)
#   packer build -only=amazon-ebs.amd64 \
#     -var 'buildkit_tarball={amd64="buildkit-v0.34.2.linux-amd64.tar.gz"}' \
#     -var 'runc={amd64="runc.amd64"}' packer/buildkitd.pkr.hcl
#
# No certificate or key is baked into the image: buildkitd-tls.service places
# them at boot from SSM Parameter Store (docs/install.md). Without them
# buildkitd refuses to listen on TCP.

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "source_ami_name" {
  type        = map(string)
  description = "Name filter of the Amazon Linux 2023 AMI per architecture; the newest match is used."
  default = {
    amd64 = "al2023-ami-2023.*-kernel-*-x86_64"
    arm64 = "al2023-ami-2023.*-kernel-*-arm64"
  }
}

variable "instance_type" {
  type = map(string)
  default = {
    amd64 = "c7a.large"
    arm64 = "c7g.large"
  }
}

variable "ami_name_prefix" {
  type    = string
  default = "dockhand-buildkitd"
}

variable "ami_users" {
  type    = list(string)
  default = []
}

variable "subnet_id" {
  type    = string
  default = ""
}

variable "root_volume_size" {
  type    = number
  default = 16
}

variable "cache_volume_size" {
  type        = number
  description = "GiB of the cache volume (/dev/sdb) instances get by default; launch templates may give more, and the filesystem and GC policy follow at boot."
  default     = 200
}

variable "cache_volume_throughput" {
  type        = number
  description = "MiB/s of the gp3 cache volume (125 to 1000); cache imports and exports are bound by it."
  default     = 250
}

variable "cache_volume_iops" {
  type    = number
  default = 3000
}

variable "buildkit_tarball" {
  type        = map(string)
  description = "BuildKit release tarball (holding bin/buildkitd and bin/buildctl) per architecture, e.g. { amd64 = \"buildkit-v0.34.2.linux-amd64.tar.gz\" }; needed for each architecture built."
  default     = {}
}

variable "runc" {
  type        = map(string)
  description = "runc binary per architecture; a missing or empty entry: runc from the Amazon Linux 2023 repositories (dnf)."
  default     = {}
}

locals {
  stamp = formatdate("YYYYMMDD-hhmmss", timestamp())
  # An optional file that was not given is uploaded as this empty placeholder.
  none = "${path.root}/files/not-given"
  tags = {
    Component = "dockhand-buildkitd"
    Source    = "packer/buildkitd.pkr.hcl"
  }
}

# What both architectures share; the build block names one source per
# architecture with what differs.
source "amazon-ebs" "builder" {
  region       = var.region
  subnet_id    = var.subnet_id
  ssh_username = "ec2-user"
  ami_users    = var.ami_users
  tags         = local.tags
  run_tags     = local.tags
  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_size
    volume_type           = "gp3"
    throughput            = 125
    iops                  = 3000
    delete_on_termination = true
  }
  # The cache volume: no snapshot, so every instance gets an empty one,
  # formatted and mounted at first boot by buildkitd-volume.service.
  ami_block_device_mappings {
    device_name           = "/dev/sdb"
    volume_size           = var.cache_volume_size
    volume_type           = "gp3"
    throughput            = var.cache_volume_throughput
    iops                  = var.cache_volume_iops
    delete_on_termination = true
  }
}

build {
  source "source.amazon-ebs.builder" {
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
      owners      = ["amazon"]
      most_recent = true
    }
  }

  source "source.amazon-ebs.builder" {
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
      owners      = ["amazon"]
      most_recent = true
    }
  }

  provisioner "shell" {
    inline = [
      "rm -rf /var/tmp/dockhand",
      "mkdir -p /var/tmp/dockhand/scripts /var/tmp/dockhand/files /var/tmp/dockhand/extra",
    ]
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
    source      = lookup(var.buildkit_tarball, source.name, "") != "" ? var.buildkit_tarball[source.name] : local.none
    destination = "/var/tmp/dockhand/extra/buildkit.tar.gz"
  }

  provisioner "file" {
    source      = lookup(var.runc, source.name, "") != "" ? var.runc[source.name] : local.none
    destination = "/var/tmp/dockhand/extra/runc"
  }

  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} bash {{ .Path }}"
    remote_folder   = "/var/tmp"
    inline = [
      "set -euo pipefail",
      "cd /var/tmp/dockhand",
      "if [ ! -s extra/buildkit.tar.gz ]; then echo 'give this architecture a BuildKit release tarball: -var buildkit_tarball={ARCH=\"FILE\"}' >&2; exit 1; fi",
      "extra=()",
      "if [ -s extra/runc ]; then extra+=(--runc extra/runc); elif ! command -v runc >/dev/null; then dnf install -y runc; fi",
      "bash scripts/install-buildkitd.sh --buildkit-tarball extra/buildkit.tar.gz \"$${extra[@]}\"",
      "systemd-analyze verify buildkitd.service buildkitd-volume.service buildkitd-tls.service",
      "systemctl is-enabled buildkitd.service",
      "# No TLS material may be baked in: it is placed at boot.",
      "test -z \"$(ls -A /etc/buildkit/tls)\"",
      "rm -rf /var/tmp/dockhand",
    ]
  }
}
