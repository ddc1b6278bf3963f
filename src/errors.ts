/**
 * Failures a user can act on. Every one carries a message that names the input or cause and says
 * what to do; the task entry prints it as the single error line and fails the run. Anything that
 * is not a UserError is a bug and is reported with its stack.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A task input holds a value that cannot work; `input` is the task.json input name. */
export class InputError extends UserError {
  constructor(
    readonly input: string,
    problem: string,
  ) {
    super(`Input '${input}': ${problem}`);
  }
}

/**
 * The network path to a server failed. `transient` says whether trying again can help: a reset
 * or refused connection can, an unknown host name or an untrusted certificate cannot.
 */
export class ConnectionError extends UserError {
  constructor(
    message: string,
    readonly transient: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A server accepted the connection (or was being connected to) and then went silent for longer than
 * the transport allows. Transient, but a second stall of the same request ends it: each one costs a
 * whole timeout.
 */
export class TimeoutError extends ConnectionError {
  constructor(message: string) {
    super(message, true);
  }
}

/**
 * A request (or an upload) failed again and again until its retry budget ran out. Final: no caller
 * retries it again, so budgets never multiply.
 */
export class RetriesExhaustedError extends UserError {
  constructor(
    message: string,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A server answered, but not with what we asked for. `status` is the HTTP status. */
export class HttpError extends UserError {
  constructor(
    message: string,
    readonly status: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Credentials were refused or lack a permission. */
export class AuthenticationError extends UserError {}

/** Content read from disk is not what it claims to be (bad digest, corrupt archive). */
export class ContentError extends UserError {}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
