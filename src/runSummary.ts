// The run summary (the markdown Azure DevOps shows with the run) of a task with one result: a heading
// and a two-column table of what it did.

/** `### heading` and a row per fact; a fact without a value (not part of this run) is left out. */
export function factTable(heading: string, facts: [label: string, value: string | undefined][]): string {
  const rows = facts.filter((fact): fact is [string, string] => fact[1] !== undefined).map(([label, value]) => `| ${label} | ${value} |`);
  return `${[`### ${heading}`, '', '| | |', '|---|---|', ...rows].join('\n')}\n`;
}

