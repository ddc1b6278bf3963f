#!/usr/bin/env bash
# Builds the Go-built tools the tests run into .cache/bin/, at the versions of
# agent-image/versions.env (the list the agent image ships from): helm and oras,
# BuildKit (buildkitd, buildctl), trivy and the test vulnerability database writer
# (trivy-db-fixture), the Kubernetes control plane (kube-apiserver,
# kube-controller-manager, kubectl, etcd) and the KEDA operator. Modules whose go.mod
# uses `replace` or `exclude` build through a wrapper module under scripts/tools/<name>,
# whose go.mod must require the pinned version (checked here).
# Idempotent: a binary that already reports its pinned version is kept, so a warm
# cache costs seconds; the Go build cache makes a rebuild after a bump cheaper.
set -Eeuo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir="$repo_root/.cache/bin"
tools_dir="$repo_root/scripts/tools"

fail() {
  echo "install-go-tools: $*" >&2
  exit 1
}

command -v go >/dev/null || fail "Go is not installed; the test tools are built from their Go modules (Go 1.26 or newer)"
# shellcheck source=SCRIPTDIR/../agent-image/versions.env
source "$repo_root/agent-image/versions.env"
mkdir -p "$bin_dir"

# Two callers (npm test and npm run demo, or two checkouts sharing .cache) must not build into the same files at once.
exec 9>"$bin_dir/.install-go-tools.lock"
flock 9

# Static binaries like the upstream release builds, never stamped with this repository's VCS state.
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# Prints the first line a binary reports about its version, or nothing.
reported_version() { # <binary> <version args...>
  local binary="$bin_dir/$1"
  shift
  [[ -x $binary ]] || return 0
  "$binary" "$@" 2>/dev/null | head -n 1 || true
}

# The version a wrapper module pins of a module, which must be the one versions.env names.
wrapper_pins() { # <wrapper dir> <module path> <version>
  local pinned
  pinned=$(cd "$tools_dir/$1" && go list -m -f '{{.Version}}' "$2")
  [[ $pinned == "$3" ]] || fail "scripts/tools/$1/go.mod requires $2 $pinned, but agent-image/versions.env pins $3; update one of them"
}

# Helm takes its version from ldflags (its Makefile does the same); without them it says only "v3.22".
if [[ $(reported_version helm version --template '{{.Version}}') != "$HELM_VERSION" ]]; then
  echo "install-go-tools: building helm $HELM_VERSION"
  GOBIN="$bin_dir" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

# oras stamps its version from its module's build info, so a module build reports it unaided.
if ! [[ $(reported_version oras version) =~ ^Version:[[:space:]]+${ORAS_VERSION#v}$ ]]; then
  echo "install-go-tools: building oras $ORAS_VERSION"
  GOBIN="$bin_dir" go install -trimpath -ldflags "-s -w" "oras.land/oras/cmd/oras@$ORAS_VERSION"
fi

# BuildKit's go.mod excludes two versions, so it builds through scripts/tools/buildkit; it reads its
# version from ldflags as its release Dockerfile sets it.
wrapper_pins buildkit github.com/moby/buildkit "$BUILDKIT_VERSION"
if [[ $(reported_version buildctl --version) != "buildctl github.com/moby/buildkit $BUILDKIT_VERSION "* ||
  $(reported_version buildkitd --version) != "buildkitd github.com/moby/buildkit $BUILDKIT_VERSION "* ]]; then
  echo "install-go-tools: building buildkitd and buildctl $BUILDKIT_VERSION (about 3 minutes on a cold cache)"
  (cd "$tools_dir/buildkit" && go build -trimpath -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" \
    -o "$bin_dir/" github.com/moby/buildkit/cmd/buildctl github.com/moby/buildkit/cmd/buildkitd)
fi

# trivy v0.74 needs Go's JSON v2 experiment; its version comes from ldflags as in its goreleaser config.
if [[ $(reported_version trivy --version) != "Version: ${TRIVY_VERSION#v}" ]]; then
  echo "install-go-tools: building trivy $TRIVY_VERSION (about 6 minutes on a cold cache)"
  GOEXPERIMENT=jsonv2 GOBIN="$bin_dir" go install -trimpath \
    -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${TRIVY_VERSION#v}" \
    "github.com/aquasecurity/trivy/cmd/trivy@$TRIVY_VERSION"
fi

# The test vulnerability database writer (scripts/tools/trivy-db-fixture) must pin trivy-db at the
# version the pinned trivy requires, so the database it writes has the schema that trivy reads. It
# is ours, so its cached build is known current by a hash of its source stamped into it.
go mod download "github.com/aquasecurity/trivy@$TRIVY_VERSION"
trivy_db_version=$(awk '$1 == "github.com/aquasecurity/trivy-db" { print $2 }' "$(go env GOMODCACHE)/cache/download/github.com/aquasecurity/trivy/@v/$TRIVY_VERSION.mod")
[[ -n $trivy_db_version ]] || fail "cannot read which trivy-db trivy $TRIVY_VERSION requires"
wrapper_pins trivy-db-fixture github.com/aquasecurity/trivy-db "$trivy_db_version"
fixture_source=$(cat "$tools_dir/trivy-db-fixture/go.mod" "$tools_dir/trivy-db-fixture/go.sum" "$tools_dir/trivy-db-fixture/main.go" | sha256sum | cut -c1-16)
if [[ $(reported_version trivy-db-fixture -version) != "trivy-db-fixture $fixture_source" ]]; then
  echo "install-go-tools: building trivy-db-fixture (trivy-db $trivy_db_version)"
  (cd "$tools_dir/trivy-db-fixture" && go build -trimpath -ldflags "-s -w -X main.sourceHash=$fixture_source" -o "$bin_dir/trivy-db-fixture" .)
fi

# Kubernetes takes its version from ldflags (hack/lib/version.sh does the same for release builds);
# without them `--version` says v0.0.0-master. k8s.io/kubernetes points its staging modules at
# ./staging with `replace`, so it builds through scripts/tools/kube.
wrapper_pins kube k8s.io/kubernetes "$KUBECTL_VERSION"
kube_ldflags() {
  local major=${KUBECTL_VERSION#v} minor=${KUBECTL_VERSION#v*.} flags="-s -w" pkg
  major=${major%%.*}
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBECTL_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  printf '%s' "$flags"
}
stale_kube_packages=()
for binary in kube-apiserver kube-controller-manager; do
  [[ $(reported_version "$binary" --version) == "Kubernetes $KUBECTL_VERSION" ]] || stale_kube_packages+=("k8s.io/kubernetes/cmd/$binary")
done
[[ $(reported_version kubectl version --client) == "Client Version: $KUBECTL_VERSION" ]] || stale_kube_packages+=(k8s.io/kubernetes/cmd/kubectl)
if ((${#stale_kube_packages[@]} > 0)); then
  echo "install-go-tools: building Kubernetes $KUBECTL_VERSION: ${stale_kube_packages[*]##*/} (about 9 minutes on a cold cache)"
  # One invocation shares the compiled packages between them; -o into a folder names each binary after its package.
  (cd "$tools_dir/kube" && go build -trimpath -ldflags "$(kube_ldflags)" -o "$bin_dir/" "${stale_kube_packages[@]}")
fi

# etcd's main module uses `replace` for its sibling modules; scripts/tools/etcd calls the published
# etcdmain. Its version string is a constant of go.etcd.io/etcd/api/v3, pinned by go.sum.
wrapper_pins etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
if [[ $(reported_version etcd --version) != "etcd Version: ${ETCD_VERSION#v}" ]]; then
  echo "install-go-tools: building etcd $ETCD_VERSION"
  (cd "$tools_dir/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin_dir/etcd" .)
fi

# The KEDA operator, run out of cluster by the agent pool chart's autoscaling tests. KEDA's go.mod
# pins k8s.io/*, controller-runtime and others with `replace`, repeated in scripts/tools/keda. Its
# version flag is a log line, so the version is read from the binary's build information instead:
# a module built through a wrapper is on the `mod` line of `go version -m`.
wrapper_pins keda github.com/kedacore/keda/v2 "$KEDA_VERSION"
keda_built_version() {
  [[ -x $bin_dir/keda-operator ]] || return 0
  go version -m "$bin_dir/keda-operator" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/kedacore/keda/v2" { print $3 }'
}
if [[ $(keda_built_version) != "$KEDA_VERSION" ]]; then
  echo "install-go-tools: building keda-operator $KEDA_VERSION (about 5 minutes on a cold cache)"
  (cd "$tools_dir/keda" && go build -trimpath -ldflags "-s -w -X=github.com/kedacore/keda/v2/version.Version=${KEDA_VERSION#v}" \
    -o "$bin_dir/keda-operator" github.com/kedacore/keda/v2/cmd/operator)
fi

[[ $(reported_version helm version --template '{{.Version}}') == "$HELM_VERSION" ]] || fail "$bin_dir/helm does not report $HELM_VERSION"
[[ $(reported_version oras version) =~ ${ORAS_VERSION#v}$ ]] || fail "$bin_dir/oras does not report $ORAS_VERSION"
[[ $(reported_version buildctl --version) == *" $BUILDKIT_VERSION "* ]] || fail "$bin_dir/buildctl does not report $BUILDKIT_VERSION"
[[ $(reported_version trivy --version) == "Version: ${TRIVY_VERSION#v}" ]] || fail "$bin_dir/trivy does not report $TRIVY_VERSION"
[[ $(reported_version trivy-db-fixture -version) == "trivy-db-fixture $fixture_source" ]] || fail "$bin_dir/trivy-db-fixture is not built from scripts/tools/trivy-db-fixture"
"$bin_dir/kube-apiserver" --version >/dev/null || fail "$bin_dir/kube-apiserver does not run"
"$bin_dir/etcd" --version >/dev/null || fail "$bin_dir/etcd does not run"
[[ $(keda_built_version) == "$KEDA_VERSION" ]] || fail "$bin_dir/keda-operator is not KEDA $KEDA_VERSION"
echo "install-go-tools: helm $HELM_VERSION, oras $ORAS_VERSION, BuildKit $BUILDKIT_VERSION, trivy $TRIVY_VERSION (and trivy-db-fixture), Kubernetes $KUBECTL_VERSION, etcd $ETCD_VERSION and KEDA $KEDA_VERSION are in $bin_dir"

