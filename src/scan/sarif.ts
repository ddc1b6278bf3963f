// The scan as SARIF 2.1.0 (OASIS), rendered the way Trivy renders it (`--format sarif`, or
// `trivy convert` of its JSON report; aquasecurity/trivy pkg/report/sarif.go), so code-scanning
// views read the task's report as they read Trivy's. Rendering it here saves a second Trivy
// process per scan. Only vulnerability results exist: the task scans for nothing else.
import type { TrivyReport, TrivyResult, TrivyVulnerability } from './findings.js';

const SARIF_SCHEMA = 'https://raw.githubusercontent.com/oasis-tcs/sarif-spec/main/sarif-2.1/schema/sarif-schema-2.1.0.json';

interface SarifRule {
  id: string;
  name: string;
  shortDescription: { text: string };
  fullDescription: { text: string };
  defaultConfiguration: { level: string };
  helpUri?: string;
  help: { text: string; markdown: string };
  properties: Record<string, unknown>;
}

function ruleName(resultClass: string | undefined): string {
  if (resultClass === 'os-pkgs') return 'OsPackageVulnerability';
  if (resultClass === 'lang-pkgs') return 'LanguageSpecificPackageVulnerability';
  return 'UnknownIssue';
}

function level(severity: string): string {
  if (severity === 'CRITICAL' || severity === 'HIGH') return 'error';
  if (severity === 'MEDIUM') return 'warning';
  if (severity === 'LOW' || severity === 'UNKNOWN') return 'note';
  return 'none';
}

/** GitHub code scanning reads `security-severity`; without a CVSS v3 score Trivy maps the severity. */
function severityScore(severity: string): string {
  return ({ CRITICAL: '9.5', HIGH: '8.0', MEDIUM: '5.5', LOW: '2.0' } as Record<string, string>)[severity] ?? '0.0';
}

/** Trivy's numbers print as Go's %.1f does. */
function properties(vulnerability: TrivyVulnerability, severity: string): Record<string, unknown> {
  const result: Record<string, unknown> = { tags: ['vulnerability', 'security', severity], precision: 'very-high', 'security-severity': severityScore(severity) };
  const cvss = vulnerability.SeveritySource ? vulnerability.CVSS?.[vulnerability.SeveritySource] : undefined;
  if (!cvss) return result;
  const fields: [string, string | number | undefined][] = [
    ['cvssv2_vector', cvss.V2Vector], ['cvssv2_score', cvss.V2Score], ['cvssv3_vector', cvss.V3Vector],
    ['cvssv3_baseScore', cvss.V3Score], ['cvssv40_vector', cvss.V40Vector], ['cvssv40_baseScore', cvss.V40Score],
  ];
  for (const [key, value] of fields) if (value !== undefined && value !== '' && value !== 0) result[key] = value;
  if (cvss.V3Score) result['security-severity'] = cvss.V3Score.toFixed(1);
  return result;
}

/**
 * Where an OS package finding points: the image's repository, as go-containerregistry's
 * ParseReference reads the target name with its ` (distro version)` suffix cut off; language
 * findings point at the file or the target as Trivy named it.
 */
export function artifactUri(target: string, resultClass: string | undefined): string {
  if (resultClass !== 'os-pkgs') return target;
  const name = /^(.+?)(?:\s*\(.*?\).*?)?$/s.exec(target)?.[1] ?? target;
  return (repositoryOf(name) ?? name).replace(/\\/g, '/');
}

const REPOSITORY_CHARS = /^[a-z0-9_./-]{2,255}$/;
const TAG_CHARS = /^[A-Za-z0-9_.-]{1,128}$/;

/** go-containerregistry name.ParseReference(…).Context().RepositoryStr(), or undefined when it would not parse. */
function repositoryOf(reference: string): string | undefined {
  const repository = (name: string): string | undefined => {
    const slash = name.indexOf('/');
    const first = slash >= 0 ? name.slice(0, slash) : '';
    const hasRegistry = slash >= 0 && (first === 'localhost' || /[.:]/.test(first));
    const path = hasRegistry ? name.slice(slash + 1) : name;
    if (!REPOSITORY_CHARS.test(path)) return undefined;
    if (hasRegistry && !/^[A-Za-z0-9.-]*(?::\d*)?$|^\[[0-9A-Fa-f:.]+\](?::\d*)?$/.test(first)) return undefined;
    const registry = hasRegistry ? first : 'index.docker.io';
    // Docker Hub's single-component names live under library/.
    return !path.includes('/') && (registry === 'index.docker.io' || registry === 'docker.io') ? `library/${path}` : path;
  };
  const asTag = (name: string): string | undefined => {
    const parts = name.split(':');
    const last = parts[parts.length - 1];
    if (parts.length > 1 && !last.includes('/')) {
      if (!TAG_CHARS.test(last)) return undefined;
      return repository(parts.slice(0, -1).join(':'));
    }
    return repository(name);
  };
  const tagged = asTag(reference);
  if (tagged !== undefined) return tagged;
  const parts = reference.split('@');
  if (parts.length !== 2 || !/^sha256:[a-f0-9]{64}$/.test(parts[1])) return undefined;
  return asTag(parts[0]);
}

/** Percent-encodes what Go's url.URL.String() encodes in a relative path. */
function uriPath(path: string): string {
  return [...Buffer.from(path, 'utf8')].map((byte) => {
    const char = String.fromCharCode(byte);
    return /[A-Za-z0-9\-_.~$&+,/:;=@]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

function locationsOf(result: TrivyResult, vulnerability: TrivyVulnerability): { startLine: number; endLine: number }[] {
  const pkg = (result.Packages ?? []).find((candidate) => candidate.Name === vulnerability.PkgName && candidate.Version === vulnerability.InstalledVersion);
  const found = (pkg?.Locations ?? []).map((location) => ({ startLine: location.StartLine ?? 0, endLine: location.EndLine ?? 0 }));
  return (found.length > 0 ? found : [{ startLine: 1, endLine: 1 }]).map((location) => (location.startLine === 0 && location.endLine === 0 ? { startLine: 1, endLine: 1 } : location));
}

export function renderSarif(report: TrivyReport): string {
  const rules: SarifRule[] = [];
  const ruleIndex = new Map<string, number>();
  const results: unknown[] = [];
  for (const result of report.Results ?? []) {
    const target = artifactUri(result.Target ?? '', result.Class);
    for (const vulnerability of result.Vulnerabilities ?? []) {
      const id = vulnerability.VulnerabilityID ?? '';
      const severity = vulnerability.Severity ?? '';
      const pkg = vulnerability.PkgName ?? '';
      const installed = vulnerability.InstalledVersion ?? '';
      const fixed = vulnerability.FixedVersion ?? '';
      const url = vulnerability.PrimaryURL ?? '';
      const description = vulnerability.Description ?? '';
      const path = vulnerability.PkgPath ? artifactUri(vulnerability.PkgPath, result.Class) : target;
      const rule: SarifRule = {
        id,
        name: ruleName(result.Class),
        shortDescription: { text: vulnerability.Title ?? '' },
        fullDescription: { text: description || (vulnerability.Title ?? '') },
        defaultConfiguration: { level: level(severity) },
        help: {
          text: `Vulnerability ${id}\nSeverity: ${severity}\nPackage: ${pkg}\nFixed Version: ${fixed}\nLink: [${id}](${url})\n${description}`,
          markdown: `**Vulnerability ${id}**\n| Severity | Package | Fixed Version | Link |\n| --- | --- | --- | --- |\n|${severity}|${pkg}|${fixed}|[${id}](${url})|\n\n${description}`,
        },
        properties: properties(vulnerability, severity),
      };
      // A vulnerability found in several packages is one rule, described by its last finding, as in Trivy.
      let index = ruleIndex.get(id);
      if (index === undefined) {
        index = rules.length;
        ruleIndex.set(id, index);
        rules.push(rule);
      } else {
        rule.helpUri = rules[index].helpUri;
        rules[index] = rule;
      }
      if (url) rules[index].helpUri = url;
      const message = `${path}: ${pkg}@${installed}`;
      results.push({
        ruleId: id,
        ruleIndex: index,
        level: level(severity),
        message: { text: `Package: ${pkg}\nInstalled Version: ${installed}\nVulnerability ${id}\nSeverity: ${severity}\nFixed Version: ${fixed}\nLink: [${id}](${url})` },
        locations: locationsOf(result, vulnerability).map(({ startLine, endLine }) => ({
          physicalLocation: { artifactLocation: { uri: uriPath(path), uriBaseId: 'ROOTPATH' }, region: { startLine, startColumn: 1, endLine, endColumn: 1 } },
          message: { text: message },
        })),
      });
    }
  }
  const run: Record<string, unknown> = {
    tool: { driver: { fullName: 'Trivy Vulnerability Scanner', informationUri: 'https://github.com/aquasecurity/trivy', name: 'Trivy', rules, version: report.Trivy?.Version ?? '' } },
    results,
    columnKind: 'utf16CodeUnits',
  };
  if (report.ArtifactType === 'container_image') {
    run.properties = { imageName: report.ArtifactName ?? '', repoTags: report.Metadata?.RepoTags ?? null, repoDigests: report.Metadata?.RepoDigests ?? null, imageID: report.Metadata?.ImageID ?? '' };
  }
  return JSON.stringify({ version: '2.1.0', $schema: SARIF_SCHEMA, runs: [run] }, null, 2);
}
