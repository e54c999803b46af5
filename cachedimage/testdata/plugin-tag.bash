#!/usr/bin/env bash
# The docker-ecr-cache Buildkite plugin's (v2.2.1) tag, written for dockhand's
# tests from the description of its algorithm (research §4.2), run with real
# bash, sha1sum and jq. Run it in the checkout with the plugin's
# BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_* variables set: it prints the tag on
# stdout and "sums=<what was hashed last>" on fd 3. JQ names the jq binary.
set -euo pipefail

# The plugin reads a list property as: the plain variable, then every
# variable named BASE_<digits>…, in `env | sort` order.
read_list() {
  local base="BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_$1" name
  items=()
  if [[ -n "${!base:-}" ]]; then
    items+=("${!base}")
  fi
  while IFS='=' read -r name _; do
    if [[ "$name" =~ ^${base}_[0-9]+ ]]; then
      items+=("${!name}")
    fi
  done < <(env | sort)
}

# Runs inside $(…), like the plugin's, where errexit is off: a failing
# sha1sum adds nothing.
tag_of() {
  set +e
  local dockerfile="$1" dir="$2" target="${BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_TARGET:-}"
  local sums item word value
  sums="$(cd ${dir}; sha1sum $(basename ${dockerfile}))"
  sums+="$(echo "${target}" | sha1sum)"
  sums+="$(uname -m | sha1sum)"
  read_list BUILD_ARGS
  for item in ${items[@]+"${items[@]}"}; do
    if [[ "${item}" != *=* ]]; then
      item+="=${!item:-}"
    fi
    sums+="$(echo "${item}" | sha1sum)"
  done
  if [[ -n "${BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_ADDITIONAL_BUILD_ARGS:-}" ]]; then
    sums+="$(echo "${BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_ADDITIONAL_BUILD_ARGS}" | sha1sum)"
  fi
  shopt -s globstar
  read_list CACHE_ON
  for item in ${items[@]+"${items[@]}"}; do
    for word in ${item}; do
      if [[ "${word}" == *.json#* ]]; then
        value=$("${JQ:-jq}" -r "${word#*#}" "${word%%#*}")
        sums+="$(echo -n "${value}" | sha1sum)"
      else
        sums+="$(sha1sum "${word}")"
      fi
    done
  done
  printf 'sums=%s' "${sums}" >&3
  echo "${sums}" | sha1sum | cut -c-7
}

if [[ -n "${BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_DOCKERFILE_INLINE:-}" ]]; then
  dir="$(mktemp -d)"
  dockerfile="${dir}/Dockerfile"
  echo "${BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_DOCKERFILE_INLINE}" >"${dockerfile}"
else
  dockerfile="${BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_DOCKERFILE:-Dockerfile}"
  dir="$(dirname "${dockerfile}")"
fi
tag="$(tag_of "${dockerfile}" "${dir}")"
echo "${tag}"
