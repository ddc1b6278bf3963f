// SemVer 2.0.0 (semver.org, "Is there a suggested regular expression"). Helm's own parser
// (Masterminds/semver) also takes `v1.2` or `1`; chart versions here must be full SemVer 2, the
// form Helm's docs require, so a tag never depends on how lenient a parser was.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

export function isSemVer(version: string): boolean {
  return SEMVER.test(version);
}

/**
 * The OCI tag Helm pushes a chart version under: tags may not contain `+`, so build metadata is
 * joined with `_` (helm pkg/registry); `helm pull --version 1.0.0+build` maps it back.
 */
export function chartTag(version: string): string {
  return version.replaceAll('+', '_');
}

/**
 * Whether Helm takes `version` as a chart version at all: Masterminds/semver's NewVersion as Helm
 * configures it (v3.5: a leading `v`, missing minor or patch, leading zeros in them allowed;
 * numeric pre-release parts without leading zeros; at most 256 bytes).
 */
export function isHelmVersion(version: string): boolean {
  if (version.length > 256) return false;
  const match = /^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*))?(\+([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*))?$/.exec(version);
  if (!match) return false;
  const maxUint64 = 2n ** 64n - 1n;
  if ([match[1], match[2], match[3]].some((part) => part !== undefined && BigInt(part.replace('.', '')) > maxUint64)) return false;
  return (match[5] ?? '').split('.').every((part) => match[5] === undefined || !/^0\d+$/.test(part));
}
