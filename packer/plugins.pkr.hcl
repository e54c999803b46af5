# The plugins the templates need on Packer >= 1.7, where the Amazon builder
# is a plugin: run `packer init packer/plugins.pkr.hcl` once, then build
# agent.pkr.hcl or buildkitd.pkr.hcl as single files (Packer loads every
# installed plugin, whichever file declared it).
#
# This block lives in its own file because Packer 1.6 (Debian bookworm's,
# which `make test` validates the templates with) has the Amazon builder
# built in and rejects `required_plugins`. Never build the packer/ directory
# as a whole: the two templates are separate images.
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.0, < 2.0.0"
    }
  }
}
