#!/usr/bin/env bash
# Build step of the Dockerfile (run as root inside the image being built, with its build arguments
# in the environment): installs the OS packages the base lacks, fetches the agent, helm, kubectl,
# buildctl and trivy and checks each against its SHA-256, and creates the agent's non-root user.
set -Eeuo pipefail

fail() {
  echo "install.sh: $*" >&2
  exit 1
}

# Pinned versions and checksums; a build argument of the same name (already in the environment) wins.
while IFS='=' read -r name value; do
  [[ $name =~ ^[A-Z][A-Z0-9_]*$ ]] || continue
  [[ -n ${!name:-} ]] || export "$name=$value"
done </tmp/versions.env
: "${AGENT_PACKAGE_URL:=https://download.agent.dev.azure.com/agent/${AGENT_VERSION:?}/vsts-agent-linux-x64-${AGENT_VERSION}.tar.gz}"
: "${HELM_URL:=https://get.helm.sh/helm-${HELM_VERSION:?}-linux-amd64.tar.gz}"
: "${KUBECTL_URL:=https://dl.k8s.io/release/${KUBECTL_VERSION:?}/bin/linux/amd64/kubectl}"
: "${BUILDKIT_URL:=https://github.com/moby/buildkit/releases/download/${BUILDKIT_VERSION:?}/buildkit-${BUILDKIT_VERSION}.linux-amd64.tar.gz}"
: "${TRIVY_URL:=https://github.com/aquasecurity/trivy/releases/download/${TRIVY_VERSION:?}/trivy_${TRIVY_VERSION#v}_Linux-64bit.tar.gz}"

# Installs only what the base lacks: a base that already carries every package (an offline mirror
# image, make-offline-base.sh) builds without reaching any package archive.
missing=()
for package in ${OS_PACKAGES:?}; do
  dpkg-query --show --showformat='${db:Status-Status}' "$package" 2>/dev/null | grep -qx installed || missing+=("$package")
done
if ((${#missing[@]})); then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends "${missing[@]}"
  rm -rf /var/lib/apt/lists/*
fi

fetch() { # <url> <sha256> <output> <name of the checksum build argument>
  [[ $2 =~ ^[0-9a-f]{64}$ ]] || fail "build argument $4 must be the SHA-256 of $1, got '$2'"
  curl --fail --silent --show-error --location --retry 3 --output "$3" "$1"
  echo "$2  $3" | sha256sum --check --quiet - >/dev/null 2>&1 ||
    fail "$1 does not match $4 ($2): refusing to install it"
}

downloads=$(mktemp -d)
fetch "${AGENT_PACKAGE_URL:?}" "${AGENT_PACKAGE_SHA256:-}" "$downloads/agent.tar.gz" AGENT_PACKAGE_SHA256
fetch "${HELM_URL:?}" "${HELM_SHA256:-}" "$downloads/helm.tar.gz" HELM_SHA256
fetch "${KUBECTL_URL:?}" "${KUBECTL_SHA256:-}" "$downloads/kubectl" KUBECTL_SHA256
fetch "${BUILDKIT_URL:?}" "${BUILDKIT_SHA256:-}" "$downloads/buildkit.tar.gz" BUILDKIT_SHA256
fetch "${TRIVY_URL:?}" "${TRIVY_SHA256:-}" "$downloads/trivy.tar.gz" TRIVY_SHA256

tar -xzf "$downloads/helm.tar.gz" -C "$downloads" --no-same-owner linux-amd64/helm
install -m 0755 "$downloads/linux-amd64/helm" /usr/local/bin/helm
install -m 0755 "$downloads/kubectl" /usr/local/bin/kubectl
# Only the client: builds run on a BuildKit daemon outside the agent pod (the chart's builder).
tar -xzf "$downloads/buildkit.tar.gz" -C "$downloads" --no-same-owner bin/buildctl
install -m 0755 "$downloads/bin/buildctl" /usr/local/bin/buildctl
tar -xzf "$downloads/trivy.tar.gz" -C "$downloads" --no-same-owner trivy
install -m 0755 "$downloads/trivy" /usr/local/bin/trivy

groupadd --gid "${AGENT_UID:?}" agent
useradd --uid "$AGENT_UID" --gid agent --create-home --home-dir /home/agent --shell /bin/bash agent
mkdir -p /azp/agent /azp/_work
tar -xzf "$downloads/agent.tar.gz" -C /azp/agent --no-same-owner
# The agent writes its registration, diagnostics and work folder beside itself.
chown -R agent:agent /azp
rm -rf "$downloads"
