// BuildKit's progress (`buildctl --progress rawjson`: one client.SolveStatus per line, moby/buildkit
// client/graph.go) turned into the task's log in the shape of BuildKit's own plain output: each
// step numbered when it starts, its output lines, `CACHED` or `DONE <seconds>` when it ends, and
// finished transfers. What the log showed is also what the run summary and the error line report:
// how many Dockerfile steps ran and came from the cache, and the step that failed with its output.
import { formatBytes, type Logger } from '../log.js';

/** The fields of a SolveStatus line that the log uses. */
interface SolveStatus {
  vertexes?: { digest: string; name?: string; started?: string; completed?: string; cached?: boolean; error?: string }[];
  statuses?: { id: string; vertex: string; current?: number; total?: number; started?: string; completed?: string }[];
  logs?: { vertex: string; stream?: number; data?: string }[];
  warnings?: { vertex?: string; short?: string }[];
}

/** A Dockerfile step as BuildKit names its vertex: `[stage-0 2/4] RUN …`, `[linux/arm64 build 3/5] COPY …`. */
const DOCKERFILE_STEP = /^\[[^\]]*\b\d+\/\d+\] /;

/** Output lines of a step kept for the error line and the log's tail. */
const KEPT_OUTPUT_LINES = 10;

interface Step {
  /** Its number in the log, in the order steps start; 0 until then. */
  number: number;
  name: string;
  cached: boolean;
  completed: boolean;
  error?: string;
  /** Last output lines, newest last. */
  output: string[];
  /** An unfinished output line per stream. */
  partial: Map<number, string>;
}

/** A step that failed: its name as BuildKit printed it, BuildKit's error and its last output lines. */
export interface FailedStep {
  name: string;
  error: string;
  output: string[];
}

export interface BuildSteps {
  /** Dockerfile steps the build needed (FROM, COPY, RUN … of every stage and platform). */
  total: number;
  /** Of those, the ones BuildKit took from its cache (local or imported). */
  cached: number;
}

/** Follows a build's progress and writes it to the log as it arrives. */
export class BuildkitProgress {
  private readonly steps = new Map<string, Step>();
  private readonly finishedTransfers = new Set<string>();
  private printed = 0;
  /** Whether any progress arrived: a build that failed before any did never reached the daemon. */
  started = false;

  constructor(private readonly logger: Logger) {}

  /** One line of `--progress rawjson` output; false when it is not one (buildctl's own error text). */
  line(text: string): boolean {
    if (!text.startsWith('{')) return false;
    let status: SolveStatus;
    try {
      status = JSON.parse(text) as SolveStatus;
    } catch {
      return false;
    }
    this.started = true;
    for (const vertex of status.vertexes ?? []) {
      const step = this.step(vertex.digest, vertex.name);
      // BuildKit lists every vertex of the graph up front; a step enters the log once it starts or is found in the cache.
      if (step.number === 0 && (vertex.started || vertex.cached || vertex.error)) {
        step.number = ++this.printed;
        this.logger.info(`#${step.number} ${step.name}`);
      }
      if (step.number === 0) continue;
      if (vertex.cached && !step.cached) {
        step.cached = true;
        this.logger.info(`#${step.number} CACHED`);
      }
      if (vertex.error && step.error === undefined) {
        step.error = vertex.error;
        this.flush(step);
        this.logger.info(`#${step.number} ERROR: ${vertex.error}`);
      } else if (vertex.completed && !step.completed && !step.cached) {
        step.completed = true;
        this.flush(step);
        this.logger.info(`#${step.number} DONE ${seconds(vertex.started, vertex.completed)}`);
      }
    }
    for (const log of status.logs ?? []) {
      const step = this.steps.get(log.vertex);
      if (step?.number) this.output(step, log.stream ?? 1, Buffer.from(log.data ?? '', 'base64').toString('utf8'));
    }
    for (const transfer of status.statuses ?? []) {
      const step = this.steps.get(transfer.vertex);
      const key = `${transfer.vertex} ${transfer.id}`;
      if (!step?.number || !transfer.completed || this.finishedTransfers.has(key)) continue;
      this.finishedTransfers.add(key);
      const size = transfer.current ? ` ${formatBytes(transfer.current)}` : '';
      this.logger.info(`#${step.number} ${transfer.id}${size} ${seconds(transfer.started, transfer.completed)} done`);
    }
    for (const warning of status.warnings ?? []) {
      const step = warning.vertex ? this.steps.get(warning.vertex) : undefined;
      this.logger.warn(`BuildKit${step?.number ? ` (#${step.number})` : ''}: ${Buffer.from(warning.short ?? '', 'base64').toString('utf8').trim()}`);
    }
    return true;
  }

  /** The first step that failed, with the output it printed last. */
  failedStep(): FailedStep | undefined {
    const step = [...this.steps.values()].find((candidate) => candidate.error !== undefined);
    return step && { name: step.name, error: step.error!, output: step.output };
  }

  counts(): BuildSteps {
    const steps = [...this.steps.values()].filter((step) => step.number > 0 && DOCKERFILE_STEP.test(step.name));
    return { total: steps.length, cached: steps.filter((step) => step.cached).length };
  }

  private step(digest: string, name: string | undefined): Step {
    let step = this.steps.get(digest);
    if (!step) {
      step = { number: 0, name: name ?? digest, cached: false, completed: false, output: [], partial: new Map() };
      this.steps.set(digest, step);
    }
    return step;
  }

  private output(step: Step, stream: number, text: string): void {
    const lines = ((step.partial.get(stream) ?? '') + text).split(/\r?\n/);
    step.partial.set(stream, lines.pop() ?? '');
    for (const line of lines) this.print(step, line);
  }

  /** Prints what a step wrote without a final newline, once it has ended. */
  private flush(step: Step): void {
    for (const [stream, line] of step.partial) {
      if (line) this.print(step, line);
      step.partial.set(stream, '');
    }
  }

  private print(step: Step, line: string): void {
    this.logger.info(`#${step.number} ${line}`);
    step.output.push(line);
    if (step.output.length > KEPT_OUTPUT_LINES) step.output.shift();
  }
}

function seconds(started: string | undefined, completed: string | undefined): string {
  if (!started || !completed) return '';
  return `${Math.max(0, (Date.parse(completed) - Date.parse(started)) / 1000).toFixed(1)}s`;
}
