#!/usr/bin/env bash
# Copies KEDA's CustomResourceDefinitions, exactly as KEDA publishes them in its Go module
# (config/crd/bases), into .cache/keda-crds/<version>/ and prints that folder; the operator's RBAC
# (config/rbac: its ClusterRole, Role and bindings) goes to .cache/keda-rbac/<version>/ (apart:
# `kubectl apply -f <folder>` would apply a subfolder too, and the CRDs go in alone). The agent
# pool chart's tests apply them to the test API server, so the chart's ScaledJob and
# TriggerAuthentication are validated against KEDA's own schemas, and the KEDA operator the tests
# run has exactly the rights KEDA grants it.
# Idempotent: a second run with the folder in place only prints it.
set -Eeuo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly KEDA_MODULE=github.com/kedacore/keda/v2

fail() {
  echo "fetch-keda-crds: $*" >&2
  exit 1
}

command -v go >/dev/null || fail "Go is not installed; KEDA's CRDs come from its Go module"
# One pin for the CRDs and the operator the tests run: the wrapper module that builds the operator
# (scripts/tools/keda); the chart's keda.version defaults to the same release.
KEDA_VERSION=$(cd "$repo_root/scripts/tools/keda" && go list -m -f '{{.Version}}' "$KEDA_MODULE")
target="$repo_root/.cache/keda-crds/$KEDA_VERSION"
rbac_target="$repo_root/.cache/keda-rbac/$KEDA_VERSION"

if [[ -f $target/.complete && -f $rbac_target/.complete ]]; then
  echo "$target"
  exit 0
fi

command -v jq >/dev/null || fail "jq is not installed"

mkdir -p "$repo_root/.cache"
staging=$(mktemp -d "$repo_root/.cache/keda-crds.XXXXXX")
trap 'rm -rf "$staging"' EXIT

# `go mod download` verifies the module against the checksum database before it lands in the
# module cache. It runs in the empty staging folder so no go.mod around it is consulted or changed.
module_dir=$(cd "$staging" && go mod download -json "$KEDA_MODULE@$KEDA_VERSION" | jq -er .Dir) ||
  fail "could not download $KEDA_MODULE@$KEDA_VERSION"
[[ -d $module_dir/config/crd/bases && -f $module_dir/config/rbac/role.yaml ]] || fail "$module_dir has no config/crd/bases or config/rbac"

mkdir "$staging/crds" "$staging/rbac"
cp "$module_dir"/config/crd/bases/*.yaml "$staging/crds/"
cp "$module_dir"/config/rbac/role.yaml "$module_dir"/config/rbac/role_binding.yaml "$staging/rbac/"
# The module cache is read-only; the copies need not be.
chmod -R u+w "$staging"
touch "$staging/crds/.complete" "$staging/rbac/.complete"
mkdir -p "$(dirname "$target")" "$(dirname "$rbac_target")"
rm -rf "$target" "$rbac_target"
mv "$staging/crds" "$target"
mv "$staging/rbac" "$rbac_target"
trap - EXIT
echo "$target"
