// POSIX shell quoting, for the command lines the product prints (the `az` fixes of the guard) or
// sends to be run (AKS run-command takes one string, not an argument array).

/** One argument, single-quoted unless it is made of characters no shell treats specially. */
export function shellQuote(argument: string): string {
  return /^[\w@%+=:,./-]+$/.test(argument) ? argument : `'${argument.replace(/'/g, `'\\''`)}'`;
}

export function shellCommand(program: string, args: readonly string[]): string {
  return [program, ...args].map(shellQuote).join(' ');
}
