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
