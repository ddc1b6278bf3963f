// What a Trivy JSON report (`--format json`, SchemaVersion 2) says about vulnerabilities, reduced to
// the fields the gate, the summary and the JUnit report use.
import { ContentError } from '../errors.js';

/** Trivy's severities, most severe first. */
export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface Finding {
  id: string;
  /** The package as Trivy names it (an apk/dpkg package, an npm module …). */
  pkg: string;
  installedVersion: string;
  /** Empty when no fixed version exists. */
  fixedVersion: string;
  severity: Severity;
  title: string;
  /** Advisory link, when the database has one. */
  url?: string;
  /** Where Trivy found the package: `<image> (alpine 3.23.2)`, `Node.js`, a jar path … */
  target: string;
}

/** One scanned target, even when it has no findings (the JUnit report lists it as passed). */
export interface ScannedTarget {
  target: string;
  /** Trivy's class: `os-pkgs` or `lang-pkgs`. */
  kind: string;
  findings: Finding[];
}

/** The fields of Trivy's JSON report (pkg/types in aquasecurity/trivy) the task reads. */
export interface TrivyCvss {
  V2Vector?: string;
  V2Score?: number;
  V3Vector?: string;
  V3Score?: number;
  V40Vector?: string;
  V40Score?: number;
}

export interface TrivyVulnerability {
  VulnerabilityID?: string;
  PkgName?: string;
  PkgPath?: string;
  InstalledVersion?: string;
  FixedVersion?: string;
  Severity?: string;
  SeveritySource?: string;
  CVSS?: Record<string, TrivyCvss>;
  Title?: string;
  Description?: string;
  PrimaryURL?: string;
}

export interface TrivyResult {
  Target?: string;
  Class?: string;
  Packages?: { Name?: string; Version?: string; Locations?: { StartLine?: number; EndLine?: number }[] | null }[] | null;
  Vulnerabilities?: TrivyVulnerability[] | null;
}

export interface TrivyReport {
  SchemaVersion?: number;
  Trivy?: { Version?: string };
  ArtifactName?: string;
  ArtifactType?: string;
  Metadata?: { ImageID?: string; RepoTags?: string[] | null; RepoDigests?: string[] | null };
  Results?: TrivyResult[] | null;
}

function severityOf(value: string | undefined): Severity {
  const upper = (value ?? '').toUpperCase();
  return (SEVERITIES as readonly string[]).includes(upper) ? (upper as Severity) : 'UNKNOWN';
}

/** Parses Trivy's JSON report, schema 2. */
export function parseTrivyReport(json: string): TrivyReport {
  let report: TrivyReport;
  try {
    report = JSON.parse(json) as TrivyReport;
  } catch {
    throw new ContentError('Trivy wrote a report that is not JSON; run the task again with system.debug to see its output.');
  }
  if (report.SchemaVersion !== 2) throw new ContentError(`Trivy wrote report schema ${String(report.SchemaVersion)}, this task reads schema 2; use the Trivy version the agent image ships.`);
  return report;
}

/**
 * Names the scanned artifact as the user gave it: Trivy names an image on disk by the path it
 * opened, which for an unpacked archive is a private folder gone after the run.
 */
export function renameArtifact(report: TrivyReport, from: string, to: string): TrivyReport {
  if (from === to) return report;
  const rename = (name: string | undefined) => (name?.startsWith(from) ? to + name.slice(from.length) : name);
  return { ...report, ArtifactName: rename(report.ArtifactName), Results: report.Results?.map((result) => ({ ...result, Target: rename(result.Target) })) };
}

/** The report's targets and their findings. */
export function scannedTargets(report: TrivyReport): ScannedTarget[] {
  return (report.Results ?? []).map((result) => {
    const target = result.Target ?? report.ArtifactName ?? '';
    return {
      target,
      kind: result.Class ?? '',
      findings: (result.Vulnerabilities ?? []).map((vulnerability) => ({
        id: vulnerability.VulnerabilityID ?? '',
        pkg: vulnerability.PkgName ?? '',
        installedVersion: vulnerability.InstalledVersion ?? '',
        fixedVersion: vulnerability.FixedVersion ?? '',
        severity: severityOf(vulnerability.Severity),
        title: vulnerability.Title ?? '',
        url: vulnerability.PrimaryURL || undefined,
        target,
      })),
    };
  });
}

export type SeverityCounts = Record<Severity, number>;

export function countBySeverity(findings: readonly Finding[]): SeverityCounts {
  const counts = Object.fromEntries(SEVERITIES.map((severity) => [severity, 0])) as SeverityCounts;
  for (const finding of findings) counts[finding.severity]++;
  return counts;
}

/** Most severe first, then by ID and package, so reports read the same on every run. */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  const rank = (severity: Severity) => SEVERITIES.indexOf(severity);
  return [...findings].sort((a, b) => rank(a.severity) - rank(b.severity) || a.id.localeCompare(b.id) || a.pkg.localeCompare(b.pkg) || a.target.localeCompare(b.target));
}
