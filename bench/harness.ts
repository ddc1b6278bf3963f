// Shared pieces of the benchmarks: timing a command (wall clock here; peak RSS and CPU time from
// GNU time), medians, and the report every benchmark returns.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Sample {
  seconds: number;
  peakRssMb: number;
  /** User plus system CPU time: less sensitive than wall time to what else the machine runs. */
  cpuSeconds: number;
}

export interface ToolFigures {
  tool: string;
  samples: Sample[];
}

export interface Target {
  claim: string;
  met: boolean;
  detail: string;
}

export interface BenchReport {
  title: string;
  figures: ToolFigures[];
  targets: Target[];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function medianSeconds(figures: ToolFigures): number {
  return median(figures.samples.map((sample) => sample.seconds));
}

/** Runs `command args` under /usr/bin/time (for peak RSS and CPU time); fails when the command fails. */
export async function timed(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-time-'));
  const report = join(dir, 'time');
  try {
    // GNU time reports wall time in 10 ms steps, too coarse for sub-second tasks: measure it here.
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      execFile('/usr/bin/time', ['-f', '%M %U %S', '-o', report, command, ...args], { env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${command} failed: ${stderr.trim().split('\n').slice(-3).join(' | ') || stdout.trim().split('\n').slice(-3).join(' | ')}`));
        else resolve();
      });
    });
    const seconds = (performance.now() - started) / 1000;
    const [kilobytes, user, system] = (await readFile(report, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number);
    return { seconds, peakRssMb: kilobytes / 1024, cpuSeconds: user + system };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function printReport(report: BenchReport): void {
  console.log(`\n## ${report.title}`);
  for (const figures of report.figures) {
    const seconds = figures.samples.map((sample) => sample.seconds.toFixed(3)).join(', ');
    const rss = Math.max(...figures.samples.map((sample) => sample.peakRssMb));
    const cpu = median(figures.samples.map((sample) => sample.cpuSeconds));
    console.log(`  ${figures.tool.padEnd(44)} median ${medianSeconds(figures).toFixed(3)} s  (runs: ${seconds})  CPU ${cpu.toFixed(2)} s  peak RSS ${rss.toFixed(0)} MB`);
  }
  for (const target of report.targets) console.log(`  [${target.met ? 'met' : 'MISSED'}] ${target.claim}: ${target.detail}`);
}
