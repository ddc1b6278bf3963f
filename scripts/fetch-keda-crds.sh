#!/usr/bin/env bash
# Copies KEDA's CustomResourceDefinitions, exactly as KEDA publishes them in its Go module
# (config/crd/bases), into .cache/keda-crds/<version>/ and prints that folder. The agent pool
# chart's install tests apply them to the test API server, so the chart's ScaledJob and
# TriggerAuthentication are validated against KEDA's own schemas.
# Idempotent: a second run with the folder in place only prints it.
set -Eeuo pipefail

# Pinned to the KEDA version the chart's keda.version defaults to (helm/azure-pipelines-agent/values.yaml).
readonly KEDA_MODULE=github.com/kedacore/keda/v2 KEDA_VERSION=v2.20.2

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target="$repo_root/.cache/keda-crds/$KEDA_VERSION"

fail() {
  echo "fetch-keda-crds: $*" >&2
  exit 1
}

if [[ -f $target/.complete ]]; then
  echo "$target"
  exit 0
fi

command -v go >/dev/null || fail "Go is not installed; KEDA's CRDs come from its Go module"
command -v jq >/dev/null || fail "jq is not installed"

mkdir -p "$repo_root/.cache"
staging=$(mktemp -d "$repo_root/.cache/keda-crds.XXXXXX")
trap 'rm -rf "$staging"' EXIT

# `go mod download` verifies the module against the checksum database before it lands in the
# module cache. It runs in the empty staging folder so no go.mod around it is consulted or changed.
module_dir=$(cd "$staging" && go mod download -json "$KEDA_MODULE@$KEDA_VERSION" | jq -er .Dir) ||
  fail "could not download $KEDA_MODULE@$KEDA_VERSION"
[[ -d $module_dir/config/crd/bases ]] || fail "$module_dir has no config/crd/bases"

cp "$module_dir"/config/crd/bases/*.yaml "$staging/"
# The module cache is read-only; the copies need not be.
chmod u+w "$staging"/*.yaml
touch "$staging/.complete"
mkdir -p "$(dirname "$target")"
rm -rf "$target"
mv "$staging" "$target"
trap - EXIT
echo "$target"
