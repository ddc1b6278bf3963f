// Build arguments and environment variables as a stage sees them while it is built: the base's
// `Env`, then each ENV and ARG in order (moby/buildkit dockerfile2llb dispatchEnv, dispatchArg).
import type { VariableLookup } from './dockerfile/lexer.js';
import type { Platform } from './imageConfig.js';
import { formatPlatform } from './imageConfig.js';

/** An ordered set of variables; setting an existing one keeps its place. */
export class Variables implements VariableLookup {
  private readonly values: Map<string, string>;

  constructor(from?: Iterable<[string, string]>) {
    this.values = new Map(from);
  }

  static fromEnv(env: readonly string[] | undefined): Variables {
    return new Variables((env ?? []).map((entry) => {
      const equals = entry.indexOf('=');
      return equals === -1 ? [entry, ''] : [entry.slice(0, equals), entry.slice(equals + 1)];
    }));
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  set(name: string, value: string): void {
    this.values.set(name, value);
  }

  clone(): Variables {
    return new Variables(this.values);
  }
}

/**
 * The arguments every Dockerfile may use in FROM lines without declaring them (BuildKit's
 * defaultArgs): the build and target platforms and the target stage. Build arguments override them.
 */
export function defaultArguments(build: Platform, target: Platform, targetStage: string, buildArgs: ReadonlyMap<string, string>): Variables {
  const values: [string, string][] = [
    ['BUILDPLATFORM', formatPlatform({ os: build.os, architecture: build.architecture, variant: build.variant })],
    ['BUILDOS', build.os],
    ['BUILDOSVERSION', ''],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETOSVERSION', ''],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['TARGETSTAGE', targetStage || 'default'],
  ];
  return new Variables(values.map(([name, value]) => [name, buildArgs.get(name) ?? value]));
}

/** Adds or replaces `KEY=value` in an Env list, keeping the order (BuildKit's addEnv). */
export function setEnv(env: string[], key: string, value: string): string[] {
  const entry = `${key}=${value}`;
  const index = env.findIndex((existing) => existing.slice(0, existing.indexOf('=') === -1 ? undefined : existing.indexOf('=')) === key);
  if (index === -1) return [...env, entry];
  const updated = [...env];
  updated[index] = entry;
  return updated;
}
