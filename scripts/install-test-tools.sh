#!/usr/bin/env bash
# Installs what the registry tests and the demo run against: the distribution registry, skopeo,
# buildah and debootstrap from Debian, and helm and oras built from their Go modules into .cache/bin/.
# Idempotent and quick on a warm machine: apt runs only when a command is missing, and a Go tool is
# rebuilt only when `.cache/bin/<tool> version` does not report the pinned version.
set -Eeuo pipefail

# Pinned versions. Helm: the newest Helm 3 release on the Go module proxy; its go.mod has no `replace`
# directives, so a plain `go install` builds exactly the published module.
readonly HELM_MODULE=helm.sh/helm/v3 HELM_VERSION=v3.22.0
readonly ORAS_MODULE=oras.land/oras ORAS_VERSION=v1.3.6

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir="$repo_root/.cache/bin"

fail() {
  echo "install-test-tools: $*" >&2
  exit 1
}

# command -> Debian package that provides it
declare -A debian_packages=(
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [buildah]=buildah
  [debootstrap]=debootstrap
  [shellcheck]=shellcheck
  [openssl]=openssl
  [jq]=jq
  [tar]=tar
  [flock]=util-linux
  # GNU time: the benchmarks read peak RSS from it (the shell keyword has no -f).
  [/usr/bin/time]=time
  # The image build test runs buildah in a network namespace with only loopback.
  [ip]=iproute2
  # A real forward proxy for the tests of the agent's proxy settings.
  [tinyproxy]=tinyproxy
  # The run-command stand-in unpacks the zip the deploy task sends, as the command pod does.
  [unzip]=unzip
)

missing_packages=()
for command_name in "${!debian_packages[@]}"; do
  # debootstrap lives in /usr/sbin, which a non-login PATH may lack.
  if ! command -v "$command_name" >/dev/null && [[ ! -x /usr/sbin/$command_name ]]; then
    missing_packages+=("${debian_packages[$command_name]}")
  fi
done

if ((${#missing_packages[@]} > 0)); then
  ((EUID == 0)) || fail "missing ${missing_packages[*]}; run as root to apt-get install them"
  echo "install-test-tools: installing ${missing_packages[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing_packages[@]}" >/dev/null
fi
for package in docker-registry skopeo buildah debootstrap shellcheck openssl jq; do
  echo "install-test-tools: $(dpkg-query -W -f '${Package} ${Version}' "$package")"
done

command -v go >/dev/null || fail "Go is not installed; helm and oras are built from their Go modules (Go 1.26 or newer)"
mkdir -p "$bin_dir"
# Two callers (npm test and npm run demo, or two checkouts' runners) must not build into the same files at once.
exec 9>"$bin_dir/.install-test-tools.lock"
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

# Helm takes its version from ldflags (its Makefile does the same); without them it says only "v3.22".
if [[ $(reported_version helm version --template '{{.Version}}') == "$HELM_VERSION" ]]; then
  echo "install-test-tools: helm $HELM_VERSION is up to date"
else
  echo "install-test-tools: building helm $HELM_VERSION (a few minutes on a cold cache)"
  GOBIN="$bin_dir" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "$HELM_MODULE/cmd/helm@$HELM_VERSION"
fi

# oras stamps its version from its module's build info, so a module build reports it unaided.
if [[ $(reported_version oras version) =~ ^Version:[[:space:]]+${ORAS_VERSION#v}$ ]]; then
  echo "install-test-tools: oras $ORAS_VERSION is up to date"
else
  echo "install-test-tools: building oras $ORAS_VERSION"
  GOBIN="$bin_dir" go install -trimpath -ldflags "-s -w" "$ORAS_MODULE/cmd/oras@$ORAS_VERSION"
fi

[[ $(reported_version helm version --template '{{.Version}}') == "$HELM_VERSION" ]] || fail "$bin_dir/helm does not report $HELM_VERSION"
[[ $(reported_version oras version) =~ ${ORAS_VERSION#v}$ ]] || fail "$bin_dir/oras does not report $ORAS_VERSION"
echo "install-test-tools: helm $HELM_VERSION and oras $ORAS_VERSION are in $bin_dir"

# The Kubernetes control plane (kube-apiserver, kube-controller-manager, etcd, kubectl) for the deploy and chart tests.
bash "$(dirname "${BASH_SOURCE[0]}")/install-kube-tools.sh"

# The KEDA operator, run out of cluster by the agent pool chart's autoscaling tests.
bash "$(dirname "${BASH_SOURCE[0]}")/install-keda-operator.sh"
