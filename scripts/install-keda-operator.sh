#!/usr/bin/env bash
# Builds the KEDA operator (github.com/kedacore/keda/v2/cmd/operator) that the agent pool tests run
# out of cluster, into .cache/bin/keda-operator. The version is pinned by the wrapper module
# scripts/tools/keda (its go.mod repeats KEDA's `replace` block; go.sum pins every dependency).
# Idempotent: the binary's embedded build information names the KEDA module version it was built
# from, so a cached binary of the pinned version is kept and a warm run costs a second. A cold
# build takes about five minutes on two cores.
set -Eeuo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wrapper_dir="$repo_root/scripts/tools/keda"
bin_dir="$repo_root/.cache/bin"
binary="$bin_dir/keda-operator"
readonly KEDA_MODULE=github.com/kedacore/keda/v2

fail() {
  echo "install-keda-operator: $*" >&2
  exit 1
}

command -v go >/dev/null || fail "Go is not installed; the KEDA operator is built from its Go module (Go 1.26 or newer)"
mkdir -p "$bin_dir"
# Two callers (npm test in two checkouts) must not build into the same file at once.
exec 9>"$bin_dir/.install-keda-operator.lock"
flock 9

keda_version=$(cd "$wrapper_dir" && go list -m -f '{{.Version}}' "$KEDA_MODULE")

# `go version -m` prints a binary's module build information; the module holding the main package
# (KEDA's, here) is on the `mod <module> <version> <sum>` line.
built_version() {
  [[ -x $binary ]] || return 0
  go version -m "$binary" 2>/dev/null | awk -v module="$KEDA_MODULE" '$1 == "mod" && $2 == module { print $3 }'
}

if [[ $(built_version) == "$keda_version" ]]; then
  echo "install-keda-operator: keda-operator $keda_version is up to date"
  exit 0
fi

echo "install-keda-operator: building keda-operator $keda_version (about five minutes on a cold cache)"
# Static, unstamped by this repository's VCS, with KEDA's version variable set as its Makefile sets
# it, so the operator's start-up log names the release.
(cd "$wrapper_dir" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
  -ldflags "-s -w -X=$KEDA_MODULE/version.Version=${keda_version#v}" \
  -o "$binary.tmp" "$KEDA_MODULE/cmd/operator")
mv "$binary.tmp" "$binary"
[[ $(built_version) == "$keda_version" ]] || fail "$binary does not report $KEDA_MODULE $keda_version"
echo "install-keda-operator: keda-operator $keda_version is in $bin_dir"
