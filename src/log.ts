/**
 * What the core needs from its host: somewhere to write progress, and a way to mark a value as
 * secret before anything could print it. The task adapter implements both with task-lib; tests
 * implement them in memory.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

export interface SecretRegistry {
  /** Must be called with every credential or derived token as soon as it exists. */
  register(secret: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, debug() {} };

/** Durations for log lines and run summaries: `12.3 s`. */
export function formatDuration(milliseconds: number): string {
  return `${(milliseconds / 1000).toFixed(1)} s`;
}

/** Sizes for log lines and run summaries, in binary units. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
