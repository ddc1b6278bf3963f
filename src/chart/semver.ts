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
