#!/usr/bin/env bash
# Builds the Kubernetes control plane the tests run — kube-apiserver,
# kube-controller-manager, kubectl and etcd — from their Go modules into
# .cache/bin/. The versions are pinned by the wrapper modules under
# scripts/tools/ (their go.mod and go.sum are the single source of truth).
# Idempotent: a binary that already reports the pinned version is kept, so a
# warm cache costs a few seconds.
set -Eeuo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_dir="$repo_root/scripts/tools"
bin_dir="$repo_root/.cache/bin"

fail() {
  echo "install-kube-tools: $*" >&2
  exit 1
}

command -v go >/dev/null || fail "Go is not installed; install Go 1.26 or newer (scripts/tools/*/go.mod)"
mkdir -p "$bin_dir"

# Two callers (e.g. two test runners) must not build into the same files at once.
exec 9>"$bin_dir/.install-kube-tools.lock"
flock 9

# Module builds, never stamped with this repository's VCS state; static
# binaries like the upstream release builds.
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

module_version() { # <wrapper dir> <module path>
  (cd "$tools_dir/$1" && go list -m -f '{{.Version}}' "$2")
}

kube_version=$(module_version kube k8s.io/kubernetes)
etcd_version=$(module_version etcd go.etcd.io/etcd/server/v3)

# Prints the first line a binary reports about its version, or nothing.
reported_version() { # <binary> <version args...>
  local binary="$bin_dir/$1"
  shift
  [[ -x $binary ]] || return 0
  "$binary" "$@" 2>/dev/null | head -n 1 || true
}

# Kubernetes takes its version from ldflags (hack/lib/version.sh does the same
# for release builds); without them `--version` says v0.0.0-master.
kube_ldflags() {
  local minor=${kube_version#v*.}
  minor=${minor%%.*}
  local major=${kube_version#v}
  major=${major%%.*}
  local flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean"
  done
  printf '%s' "$flags"
}

stale_kube_packages=()
[[ $(reported_version kube-apiserver --version) == "Kubernetes $kube_version" ]] ||
  stale_kube_packages+=(k8s.io/kubernetes/cmd/kube-apiserver)
[[ $(reported_version kube-controller-manager --version) == "Kubernetes $kube_version" ]] ||
  stale_kube_packages+=(k8s.io/kubernetes/cmd/kube-controller-manager)
[[ $(reported_version kubectl version --client) == "Client Version: $kube_version" ]] ||
  stale_kube_packages+=(k8s.io/kubernetes/cmd/kubectl)

if ((${#stale_kube_packages[@]} > 0)); then
  echo "install-kube-tools: building Kubernetes $kube_version: ${stale_kube_packages[*]##*/} (takes a while on a cold cache)"
  # One invocation for all three shares the compiled packages between them;
  # -o into a directory names each binary after its package.
  (cd "$tools_dir/kube" && go build -trimpath -ldflags "$(kube_ldflags)" -o "$bin_dir/" "${stale_kube_packages[@]}")
else
  echo "install-kube-tools: Kubernetes $kube_version is up to date"
fi

if [[ $(reported_version etcd --version) != "etcd Version: ${etcd_version#v}" ]]; then
  echo "install-kube-tools: building etcd $etcd_version"
  # etcd's version string is a constant of go.etcd.io/etcd/api/v3, pinned by go.sum.
  (cd "$tools_dir/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin_dir/etcd" .)
else
  echo "install-kube-tools: etcd $etcd_version is up to date"
fi

"$bin_dir/kube-apiserver" --version >/dev/null || fail "kube-apiserver in $bin_dir does not run"
"$bin_dir/etcd" --version >/dev/null || fail "etcd in $bin_dir does not run"
echo "install-kube-tools: kube-apiserver, kube-controller-manager, kubectl ($kube_version) and etcd ($etcd_version) are in $bin_dir"
