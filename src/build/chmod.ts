// `COPY --chmod`: an octal mode (`0755`, up to 07777) or chmod(1)'s symbolic form (`u+x,go-w`,
// `a=rX`), applied with an empty umask as BuildKit applies it.

export type ChmodSpec = { kind: 'octal'; mode: number } | { kind: 'symbolic'; clauses: Clause[]; text: string };

interface Clause {
  who: number;
  actions: { op: '+' | '-' | '='; perm: string }[];
}

const USER = 0o4700;
const GROUP = 0o2070;
const OTHER = 0o0007;

/** Parses `--chmod`; throws with BuildKit's wording for numbers that are not octal modes. */
export function parseChmod(text: string): ChmodSpec {
  if (/^\d+$/.test(text)) {
    const mode = /^[0-7]+$/.test(text) ? parseInt(text, 8) : NaN;
    if (!Number.isFinite(mode) || mode > 0o7777) throw new Error(`invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777`);
    return { kind: 'octal', mode };
  }
  const clauses: Clause[] = [];
  for (const part of text.split(',')) {
    const match = /^([ugoa]*)((?:[-+=][rwxXstugo]*)+)$/.exec(part);
    if (!match) throw new Error(`invalid chmod parameter: '${text}'. use an octal mode such as 0755 or a symbolic one such as u+x,go-w`);
    let who = 0;
    for (const letter of match[1]) who |= letter === 'u' ? USER : letter === 'g' ? GROUP : letter === 'o' ? OTHER : USER | GROUP | OTHER;
    const actions = [...match[2].matchAll(/([-+=])([rwxXstugo]*)/g)].map(([, op, perm]) => ({ op: op as '+' | '-' | '=', perm }));
    if (actions.some((action) => /[ugo]/.test(action.perm) && action.perm.length > 1)) {
      throw new Error(`invalid chmod parameter: '${text}'. a permission copy (u, g or o) stands alone after its operator`);
    }
    clauses.push({ who, actions });
  }
  return { kind: 'symbolic', clauses, text };
}

/** The mode a copied file or folder gets: `--chmod` applied to its source mode. */
export function applyChmod(spec: ChmodSpec, mode: number, isDirectory: boolean): number {
  if (spec.kind === 'octal') return spec.mode;
  let result = mode & 0o7777;
  for (const clause of spec.clauses) {
    // No `who` means all, masked by the umask, which is empty here.
    const who = clause.who || USER | GROUP | OTHER;
    for (const { op, perm } of clause.actions) {
      let bits = 0;
      if (/^[ugo]$/.test(perm)) {
        const shift = perm === 'u' ? 6 : perm === 'g' ? 3 : 0;
        const copied = (result >> shift) & 0o7;
        bits = (copied << 6) | (copied << 3) | copied;
      } else {
        for (const letter of perm) {
          if (letter === 'r') bits |= 0o444;
          else if (letter === 'w') bits |= 0o222;
          else if (letter === 'x') bits |= 0o111;
          else if (letter === 'X') {
            if (op === '-' || isDirectory || (result & 0o111) !== 0) bits |= 0o111;
          } else if (letter === 's') bits |= 0o6000;
          else if (letter === 't' && (who & ~OTHER) !== 0) bits |= 0o1000;
        }
      }
      const mask = who | (who & ~OTHER ? 0o1000 : 0);
      if (op === '+') result |= bits & mask;
      else if (op === '-') result &= ~(bits & mask);
      else result = (result & ~(who & 0o6777)) | (bits & mask);
    }
  }
  return result;
}

/** The permission bits of folders a COPY creates: an octal `--chmod`, else 0755 (BuildKit's copier). */
export function createdDirectoryMode(spec: ChmodSpec | undefined): number {
  return spec?.kind === 'octal' ? spec.mode & 0o777 : 0o755;
}
