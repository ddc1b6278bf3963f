#!/usr/bin/env bash
# Build step of the Dockerfile (run as root inside the image being built, with its build arguments
# in the environment): installs the OS packages the base lacks, fetches the agent, helm and kubectl
# and checks each against its SHA-256, and creates the agent's non-root user.
set -Eeuo pipefail

fail() {
  echo "install.sh: $*" >&2
  exit 1
}

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

tar -xzf "$downloads/helm.tar.gz" -C "$downloads" --no-same-owner linux-amd64/helm
install -m 0755 "$downloads/linux-amd64/helm" /usr/local/bin/helm
install -m 0755 "$downloads/kubectl" /usr/local/bin/kubectl

groupadd --gid "${AGENT_UID:?}" agent
useradd --uid "$AGENT_UID" --gid agent --create-home --home-dir /home/agent --shell /bin/bash agent
mkdir -p /azp/agent /azp/_work
tar -xzf "$downloads/agent.tar.gz" -C /azp/agent --no-same-owner
# The agent writes its registration, diagnostics and work folder beside itself.
chown -R agent:agent /azp
rm -rf "$downloads"
