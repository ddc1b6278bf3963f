#!/usr/bin/env bash
# Makes a Debian bookworm root file system tarball that already holds every OS package the agent
# image needs (the Dockerfile's OS_PACKAGES), for building the image where no package archive is
# reachable: import the tarball as the base image and pass it as BASE_IMAGE; the Dockerfile then
# finds nothing to install. Needs root, debootstrap and a Debian mirror (or a local one) once.
#
#   make-offline-base.sh <output.tar> [mirror URL]
set -Eeuo pipefail

fail() {
  echo "make-offline-base: $*" >&2
  exit 1
}

[[ $# -ge 1 && $# -le 2 ]] || fail "usage: make-offline-base.sh <output.tar> [mirror URL]"
output=$1
mirror=${2:-http://deb.debian.org/debian}
dockerfile="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/Dockerfile"

# debootstrap lives in /usr/sbin, which a non-login PATH may lack.
PATH=$PATH:/usr/sbin:/sbin
command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
[[ $EUID -eq 0 ]] || fail "debootstrap needs root"

# The Dockerfile is the one list of packages; read it rather than keep a second copy here.
packages=$(sed -n 's/^ARG OS_PACKAGES="\(.*\)"$/\1/p' "$dockerfile")
[[ -n $packages ]] || fail "no ARG OS_PACKAGES=\"…\" line in $dockerfile"

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/offline-base.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

debootstrap --variant=minbase --include="${packages// /,}" bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
  fail "debootstrap failed; its log is $rootfs.log"
rm -f "$rootfs.log"

# What an image does not need: package lists and downloaded .debs (apt fetches fresh ones anyway).
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb

mkdir -p "$(dirname "$output")"
tar --numeric-owner -C "$rootfs" -cf "$output.partial" .
mv "$output.partial" "$output"
