// Readers for the input shapes every task shares. Each failure is an InputError that names the
// input, so the task's one error line says what to fix.
import * as tl from 'azure-pipelines-task-lib/task.js';
import { InputError } from '../../src/errors.js';

/** The input's value, trimmed; undefined when the pipeline left it empty. */
export function optionalInput(name: string): string | undefined {
  return tl.getInput(name)?.trim() || undefined;
}

/** The input's value, trimmed; `problem` is what the error says when it is empty. */
export function requiredInput(name: string, problem = 'is required; give a value.'): string {
  const value = optionalInput(name);
  if (!value) throw new InputError(name, problem);
  return value;
}

/** One entry per line (tags, value files, overrides, build arguments …): trimmed, blank lines dropped, repeats kept once. */
export function listInput(name: string): string[] {
  return [...new Set((tl.getInput(name) ?? '').split(/\r?\n/).map((line) => line.trim()).filter(Boolean))];
}

/** A whole number from `min` to `max`; `fallback` when empty. */
export function wholeNumberInput(name: string, fallback: number, min: number, max: number): number {
  const value = optionalInput(name) ?? String(fallback);
  const number = Number(value);
  if (!/^\d+$/.test(value) || number < min || number > max) throw new InputError(name, `'${value}' is not a whole number from ${min} to ${max}.`);
  return number;
}

/** `300`, `300s`, `5m`, `72h`, `1h30m`, `3d` → seconds; `fallback` (in the same notation) when empty. */
export function durationInput(name: string, fallback: string): number {
  const value = optionalInput(name) ?? fallback;
  if (/^\d+$/.test(value)) return Number(value);
  const match = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(value);
  const seconds = match ? Number(match[1] ?? 0) * 86400 + Number(match[2] ?? 0) * 3600 + Number(match[3] ?? 0) * 60 + Number(match[4] ?? 0) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) throw new InputError(name, `'${value}' is not a duration; write seconds or a value such as 5m, 72h, 3d or 1h30m.`);
  return seconds;
}
