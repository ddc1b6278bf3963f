#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks run against: the distribution registry,
# skopeo, buildah, debootstrap, runc and the other Debian packages below, then the Go-built tools
# (install-go-tools.sh) into .cache/bin/. Idempotent and quick on a warm machine: apt runs only when
# a command is missing, and a Go tool is rebuilt only when it does not report its pinned version.
set -Eeuo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

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
  # buildkitd runs RUN steps with Debian's runc and the OCI worker.
  [runc]=runc
  # A static busybox makes small test base images with nothing downloaded.
  [busybox]=busybox-static
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
for package in docker-registry skopeo buildah debootstrap runc busybox-static shellcheck openssl jq; do
  echo "install-test-tools: $(dpkg-query -W -f '${Package} ${Version}' "$package")"
done

# helm, oras, BuildKit, trivy and the Kubernetes control plane, built from their Go modules.
bash "$repo_root/scripts/install-go-tools.sh"
