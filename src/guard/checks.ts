// The vocabulary of the posture checks: every check has a stable id (what pipelines and the report
// refer to), a severity, the evidence it saw and, when it fails, the exact `az` command that fixes it.
import { shellQuote } from '../shell.js';

/** `high` findings fail the task in `enforce` and `remediate`; the others are warnings in every mode. */
export type Severity = 'high' | 'medium' | 'low';

/** `skip`: the check does not apply (data endpoints of a registry without private endpoints). */
export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  /** Stable id, e.g. `acr-public-network`. */
  id: string;
  /** What a passing check means, e.g. "Public network access is closed". */
  title: string;
  severity: Severity;
  /** The resource checked, e.g. `registry 'contoso'`. */
  resource: string;
  status: CheckStatus;
  /** What was seen: the settings or answers the verdict rests on. */
  evidence: string;
  /** The command that fixes a failed check. */
  fix?: string;
}

/** A resource by resource group and name, as the `az` commands take it. */
export interface ResourceRef {
  resourceGroup: string;
  name: string;
}

/** What one check concludes; the check's table entry adds id, title and severity. */
export interface Verdict {
  status: CheckStatus;
  evidence: string;
  fix?: string;
}

export interface CheckDefinition<Facts> {
  id: string;
  title: string;
  severity: Severity;
  evaluate: (facts: Facts) => Verdict;
}

/** Runs a table of checks over the facts gathered about one resource. */
export function runChecks<Facts>(definitions: CheckDefinition<Facts>[], facts: Facts, resource: string): CheckResult[] {
  return definitions.map(({ id, title, severity, evaluate }) => {
    const verdict = evaluate(facts);
    return { id, title, severity, resource, ...verdict, fix: verdict.status === 'fail' ? verdict.fix : undefined };
  });
}

/**
 * Renders an `az` command for a POSIX shell. Names from ARM are mostly safe as they are; anything
 * else (resource groups may hold parentheses) is single-quoted so the printed fix can be pasted.
 * `<placeholders>` for values only the user knows stay as they are.
 */
export function azCommand(args: string[]): string {
  return ['az', ...args].map((arg) => (/^<[\w-]+>$/.test(arg) ? arg : shellQuote(arg))).join(' ');
}
