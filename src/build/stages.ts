// Builds the stages of a Dockerfile without running anything: each instruction becomes a change to
// the image config or a layer of files, with the semantics of BuildKit's dockerfile frontend
// (moby/buildkit frontend/dockerfile/dockerfile2llb): meta ARGs visible to FROM only, ARG and ENV
// expansion in order, WORKDIR and USER, COPY from the context, a stage or an image, multi-stage
// builds where only the stages the target needs are built. Anything that needs a runtime or the
// network is refused with its file and line before anything is read or sent.
import { constants } from 'node:os';
import { posix } from 'node:path';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import { formatImageName, type BaseImage } from './baseImage.js';
import { parseChmod, type ChmodSpec } from './chmod.js';
import { copyIntoStage, makeDirectories, resolveDestination, type Owner } from './copy.js';
import { expandWord, expandWords, type VariableLookup } from './dockerfile/lexer.js';
import { DockerfileSyntaxError } from './dockerfile/parser.js';
import { readDockerfile, type Dockerfile, type Instruction, type InstructionOf, type Stage } from './dockerfile/instructions.js';
import { IgnoreMatcher } from './dockerignore.js';
import { cleanPath, SCRATCH, StageFilesystem, type Layer } from './filesystem.js';
import { DEFAULT_PATH, formatPlatform, parsePlatform, type ContainerConfig, type HistoryEntry, type ImageConfig, type Platform } from './imageConfig.js';
import { StageTree, type ContextTree, type SourceTree } from './sources.js';
import { defaultArguments, setEnv, Variables } from './variables.js';

/** A Dockerfile step that assemble cannot do, with where it is. */
export interface Blocker {
  where: string;
  reason: string;
}

export interface BuildPlan {
  dockerfile: Dockerfile;
  /** Label of the Dockerfile in messages (`Dockerfile`, `build/app.Dockerfile`). */
  file: string;
  /** Stages the target needs, in Dockerfile order; the target last. */
  stages: Stage[];
  target: Stage;
  /** Global (meta) arguments, for FROM lines. */
  metaArgs: Variables;
  /** Steps that need a runtime or the network; assemble refuses the build when there are any. */
  blockers: Blocker[];
  /** Build arguments no ARG declares (a typo, usually). */
  unusedBuildArgs: string[];
}

export interface PlanOptions {
  /** Dockerfile text. */
  text: string;
  file: string;
  buildArgs: ReadonlyMap<string, string>;
  /** Stage name to build; the last stage when empty. */
  target?: string;
  platform: Platform;
  buildPlatform: Platform;
}

function at(file: string, line: number): string {
  return `${file}:${line}`;
}

/** Reads the Dockerfile and decides which stages the target needs. Reads nothing else. */
export function planBuild(options: PlanOptions): BuildPlan {
  let dockerfile: Dockerfile;
  try {
    dockerfile = readDockerfile(options.text);
  } catch (error) {
    if (error instanceof DockerfileSyntaxError) throw new UserError(`${at(options.file, error.line)}: ${error.message}`);
    throw error;
  }
  const names = dockerfile.stages.map((stage) => stage.name);
  let target = dockerfile.stages.at(-1)!;
  if (options.target) {
    const found = dockerfile.stages.find((stage) => stage.name === options.target!.toLowerCase());
    if (!found) {
      throw new UserError(`Input 'target': the Dockerfile has no stage named '${options.target}' (stages: ${names.filter(Boolean).join(', ') || 'none are named'}).`);
    }
    target = found;
  }
  const metaArgs = defaultArguments(options.buildPlatform, options.platform, target.name ?? '', options.buildArgs);
  const declared = new Set<string>(['SOURCE_DATE_EPOCH']);
  for (const instruction of dockerfile.metaArgs) {
    for (const arg of instruction.args) {
      declared.add(arg.key);
      const given = options.buildArgs.get(arg.key);
      if (given !== undefined) metaArgs.set(arg.key, given);
      else if (arg.value !== undefined) metaArgs.set(arg.key, expandAt(options.file, instruction, arg.value, metaArgs));
    }
  }
  // Which stages the target reaches through FROM <stage> and COPY --from=<stage>.
  const stageOf = (name: string): Stage | undefined => {
    if (/^\d+$/.test(name)) return dockerfile.stages[Number(name)];
    return dockerfile.stages.find((stage) => stage.name === name.toLowerCase());
  };
  const baseStage = new Map<Stage, Stage | undefined>();
  for (const stage of dockerfile.stages) {
    const image = expandAt(options.file, stage.from, stage.from.image, metaArgs);
    if (!image) throw new UserError(`${at(options.file, stage.from.line)}: base name (${stage.from.image}) should not be blank.`);
    // Only a stage defined earlier can be a base (BuildKit registers names in order).
    const earlier = dockerfile.stages.slice(0, stage.index).find((candidate) => candidate.name === image);
    baseStage.set(stage, earlier);
  }
  const reached = new Set<Stage>();
  const visit = (stage: Stage, path: Set<Stage>) => {
    if (path.has(stage)) throw new UserError(`${at(options.file, stage.from.line)}: circular dependency detected on stage: ${stage.name ?? stage.index}.`);
    if (reached.has(stage)) return;
    reached.add(stage);
    const next = new Set(path).add(stage);
    const base = baseStage.get(stage);
    if (base) visit(base, next);
    for (const instruction of stage.instructions) {
      if (instruction.kind !== 'copy' || !instruction.from) continue;
      if (/\$/.test(instruction.from)) {
        throw new UserError(`${at(options.file, instruction.line)}: variable expansion is not supported for --from; define a stage with FROM using an ARG from the global scope instead.`);
      }
      const source = stageOf(instruction.from);
      if (source) visit(source, next);
    }
  };
  visit(target, new Set());
  for (const stage of dockerfile.stages) {
    for (const instruction of stage.instructions) {
      if (instruction.kind === 'arg') for (const arg of instruction.args) declared.add(arg.key);
    }
  }
  const stages = dockerfile.stages.filter((stage) => reached.has(stage));
  const blockers: Blocker[] = [];
  for (const stage of stages) {
    for (const instruction of stage.instructions) {
      const where = at(options.file, instruction.line);
      if (instruction.kind === 'run') blockers.push({ where, reason: 'RUN needs a container runtime' });
      if (instruction.kind === 'add') {
        for (const source of instruction.sources) {
          if (isRemote(source.path)) blockers.push({ where, reason: `ADD ${source.path} downloads at build time` });
        }
      }
      if (instruction.kind === 'copy' && instruction.parents) blockers.push({ where, reason: 'COPY --parents is not supported by the assemble builder' });
    }
    const base = baseStage.get(stage);
    if (base?.instructions.some((instruction) => instruction.kind === 'onbuild')) {
      const trigger = base.instructions.find((instruction) => instruction.kind === 'onbuild')!;
      blockers.push({ where: at(options.file, trigger.line), reason: `stage ${stage.name ?? stage.index} runs the ONBUILD triggers of its base stage` });
    }
  }
  const unusedBuildArgs = [...options.buildArgs.keys()].filter((key) => !declared.has(key) && !metaArgs.has(key));
  return { dockerfile, file: options.file, stages, target, metaArgs, blockers, unusedBuildArgs };
}

function isRemote(source: string): boolean {
  return /^(https?|git|ssh):\/\//i.test(source) || /^git@/.test(source) || /\.git(#.*)?$/.test(source);
}

function expandAt(file: string, instruction: { line: number }, word: string, variables: VariableLookup, escape = '\\'): string {
  try {
    return expandWord(word, variables, { escape });
  } catch (error) {
    throw new UserError(`${at(file, instruction.line)}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** What a stage became. */
export interface BuiltStage {
  stage: Stage;
  /** The image the stage chain starts from; undefined for `scratch`. */
  base?: BaseImage;
  config: ImageConfig;
  filesystem: StageFilesystem;
  /** History of this build's instructions, each with its layer when it wrote files. */
  history: { entry: HistoryEntry; layer?: Layer }[];
  variables: Variables;
}

export interface BuildStagesOptions {
  plan: BuildPlan;
  platform: Platform;
  buildArgs: ReadonlyMap<string, string>;
  context: ContextTree;
  /** Reads a base image (FROM, COPY --from) for this build's platform. */
  resolveImage(name: string, platform: Platform, where: string): Promise<BaseImage>;
  /** History `created` and the image's creation time. */
  created: string;
  /** Private scratch folder (archives that ADD unpacks). */
  scratch: string;
  logger: Logger;
}

/** Builds the target stage and every stage it needs, for one platform. */
export async function buildStages(options: BuildStagesOptions): Promise<BuiltStage> {
  const { plan } = options;
  const built = new Map<Stage, BuiltStage>();
  const images = new Map<string, Promise<BaseImage>>();
  const image = (name: string, platform: Platform, where: string) => {
    const key = `${name}|${formatPlatform(platform)}`;
    let pending = images.get(key);
    if (!pending) {
      pending = options.resolveImage(name, platform, where);
      images.set(key, pending);
    }
    return pending;
  };
  for (const stage of plan.stages) {
    const builder = new StageBuilder(options, stage, built, image);
    built.set(stage, await builder.build());
  }
  const target = built.get(plan.target)!;
  await target.filesystem.settleImpliedDirs();
  return target;
}

/** A new, empty image as BuildKit starts `FROM scratch`: working folder `/` and a default PATH. */
function emptyConfig(platform: Platform): ImageConfig {
  return {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
  };
}

function cloneConfig(config: ImageConfig): ImageConfig {
  return structuredClone(config);
}

const SIGNALS = new Set(Object.keys(constants.signals).map((name) => name.replace(/^SIG/, '')));

function validSignal(signal: string): boolean {
  if (/^\d+$/.test(signal)) return Number(signal) !== 0;
  const name = signal.toUpperCase().replace(/^SIG/, '');
  return SIGNALS.has(name) || /^RTM(IN(\+\d+)?|AX(-\d+)?)$/.test(name);
}

/** `[ip:][hostPort:]containerPort[/proto]`, ranges allowed, as BuildKit reads EXPOSE. */
function parsePorts(spec: string): string[] {
  const [portPart, proto = ''] = spec.split('/', 2);
  const protocol = proto.toLowerCase() || 'tcp';
  if (!['tcp', 'udp', 'sctp'].includes(protocol)) throw new Error(`invalid proto: ${proto}`);
  const container = portPart.split(':').at(-1) ?? '';
  if (!container) throw new Error(`no port specified: ${spec}`);
  const [startText, endText] = container.split('-', 2);
  const number = (text: string) => {
    if (!/^\d+$/.test(text) || Number(text) > 65535) throw new Error(`invalid containerPort: ${container}`);
    return Number(text);
  };
  const start = number(startText);
  const end = endText === undefined || endText === startText ? start : number(endText);
  if (end < start) throw new Error(`invalid port range: ${container}`);
  return Array.from({ length: end - start + 1 }, (_, index) => `${start + index}/${protocol}`);
}

/** Go's %q of a string slice, as BuildKit writes CMD and ENTRYPOINT into history. */
function goQuotedList(values: string[]): string {
  return `[${values.map((value) => JSON.stringify(value)).join(' ')}]`;
}

class StageBuilder {
  private readonly where: (instruction: { line: number }) => string;
  private config!: ImageConfig;
  private filesystem!: StageFilesystem;
  private variables = new Variables();
  private base?: BaseImage;
  private readonly history: { entry: HistoryEntry; layer?: Layer }[] = [];
  private cmdSet = false;

  constructor(
    private readonly options: BuildStagesOptions,
    private readonly stage: Stage,
    private readonly built: Map<Stage, BuiltStage>,
    private readonly image: (name: string, platform: Platform, where: string) => Promise<BaseImage>,
  ) {
    this.where = (instruction) => at(options.plan.file, instruction.line);
  }

  private get escape(): string {
    return this.options.plan.dockerfile.escape;
  }

  private expand(instruction: { line: number }, word: string): string {
    return expandAt(this.options.plan.file, instruction, word, this.variables, this.escape);
  }

  private fail(instruction: { line: number }, message: string): UserError {
    return new UserError(`${this.where(instruction)}: ${message}`);
  }

  async build(): Promise<BuiltStage> {
    await this.start();
    for (const instruction of this.stage.instructions) await this.dispatch(instruction);
    return { stage: this.stage, base: this.base, config: this.config, filesystem: this.filesystem, history: this.history, variables: this.variables };
  }

  private async start(): Promise<void> {
    const { plan, platform } = this.options;
    const from = this.stage.from;
    const name = expandAt(plan.file, from, from.image, plan.metaArgs, this.escape);
    let stagePlatform = platform;
    if (from.platform) {
      const text = expandAt(plan.file, from, from.platform, plan.metaArgs, this.escape);
      if (!text) throw this.fail(from, `empty platform value from expression ${from.platform}`);
      stagePlatform = parsePlatform(text, `--platform on ${this.where(from)}`);
    }
    const parent = [...this.built.keys()].find((stage) => stage.index < this.stage.index && stage.name === name);
    if (parent) {
      const built = this.built.get(parent)!;
      this.config = cloneConfig(built.config);
      this.config.config.OnBuild = undefined;
      this.filesystem = built.filesystem.fork();
      this.base = built.base;
      this.history.push(...built.history);
      // The parent's ARG values stay visible, as BuildKit carries the parent's build state over.
      this.variables = built.variables.clone();
    } else if (name === 'scratch') {
      this.config = emptyConfig(stagePlatform);
      this.filesystem = new StageFilesystem(SCRATCH);
    } else {
      this.base = await this.image(name, stagePlatform, this.where(from));
      const triggers = this.base.config.config?.OnBuild ?? [];
      if (triggers.length > 0) {
        throw this.fail(from, `the base image ${formatImageName(this.base.name)} has ONBUILD triggers (${triggers.join('; ')}), which need a runtime; build on an image without them, or use the BuildKit builder.`);
      }
      this.config = cloneConfig(this.base.config);
      delete this.config.created;
      this.config.config ??= {};
      this.config.rootfs = { type: 'layers', diff_ids: [...(this.base.config.rootfs?.diff_ids ?? [])] };
      this.filesystem = new StageFilesystem(this.base.files);
    }
    const env = this.config.config.Env ?? [];
    if (!env.some((entry) => entry.startsWith('PATH='))) this.config.config.Env = [...env, `PATH=${DEFAULT_PATH}`];
    if (!parent) this.variables = Variables.fromEnv(this.config.config.Env);
  }

  /** One history entry; whether its layer holds anything is settled when the image is written. */
  private record(createdBy: string, layer?: Layer): void {
    this.history.push({ entry: { created: this.options.created, created_by: createdBy, comment: 'buildkit.dockerfile.v0' }, layer });
  }

  private get container(): ContainerConfig {
    return this.config.config;
  }

  private async dispatch(instruction: Exclude<Instruction, InstructionOf<'from'>>): Promise<void> {
    try {
      await this.apply(instruction);
    } catch (error) {
      if (error instanceof UserError) throw error;
      throw this.fail(instruction, error instanceof Error ? error.message : String(error));
    }
  }

  private async apply(instruction: Exclude<Instruction, InstructionOf<'from'>>): Promise<void> {
    switch (instruction.kind) {
      case 'env': {
        const pairs = instruction.pairs.map((pair) => [this.expand(instruction, pair.key), this.expand(instruction, pair.value)] as const);
        for (const [key, value] of pairs) {
          this.variables.set(key, value);
          this.container.Env = setEnv(this.container.Env ?? [], key, value);
        }
        this.record(`ENV ${pairs.map(([key, value]) => `${key}=${value}`).join(' ')}`);
        return;
      }
      case 'label': {
        const pairs = instruction.pairs.map((pair) => [this.expand(instruction, pair.key), this.expand(instruction, pair.value)] as const);
        this.container.Labels ??= {};
        for (const [key, value] of pairs) this.container.Labels[key] = value;
        this.record(`LABEL ${pairs.map(([key, value]) => `${key}=${value}`).join(' ')}`);
        return;
      }
      case 'arg': {
        const written: string[] = [];
        for (const arg of instruction.args) {
          const given = this.options.buildArgs.get(arg.key);
          let value: string | undefined;
          if (given !== undefined) value = given;
          else if (arg.value !== undefined) value = this.expand(instruction, arg.value);
          else value = this.options.plan.metaArgs.get(arg.key);
          if (value !== undefined) this.variables.set(arg.key, value);
          written.push(value === undefined ? arg.key : `${arg.key}=${value}`);
        }
        this.record(`ARG ${written.join(' ')}`);
        return;
      }
      case 'workdir':
        return this.workdir(instruction);
      case 'user': {
        this.container.User = this.expand(instruction, instruction.user);
        this.record(`USER ${this.container.User}`);
        return;
      }
      case 'expose': {
        const ports = instruction.ports.flatMap((port) => expandWords(port, this.variables, { escape: this.escape })).flatMap(parsePorts);
        this.container.ExposedPorts ??= {};
        for (const port of ports) this.container.ExposedPorts[port] = {};
        this.record(`EXPOSE [${ports.join(' ')}]`);
        return;
      }
      case 'cmd':
      case 'entrypoint': {
        let args: string[] | null = instruction.command.args;
        if (!instruction.command.json) args = [...(this.container.Shell?.length ? this.container.Shell : ['/bin/sh', '-c']), args.join(' ')];
        else if (instruction.kind === 'entrypoint' && args.length === 0) args = null;
        if (instruction.kind === 'cmd') {
          this.container.Cmd = args;
          this.cmdSet = true;
        } else {
          this.container.Entrypoint = args;
          // An ENTRYPOINT resets a CMD inherited from the base (BuildKit dispatchEntrypoint).
          if (!this.cmdSet) this.container.Cmd = null;
        }
        // BuildKit marks CMD as already escaped (a Windows-only flag Docker keeps for compatibility).
        if (instruction.kind === 'cmd') this.container.ArgsEscaped = true;
        this.record(`${instruction.kind.toUpperCase()} ${goQuotedList(args ?? [])}`);
        return;
      }
      case 'shell':
        this.container.Shell = instruction.shell;
        this.record(`SHELL [${instruction.shell.join(' ')}]`);
        return;
      case 'healthcheck': {
        const check = instruction.healthcheck;
        const healthcheck = Object.fromEntries(
          Object.entries({ Test: check.test, Interval: check.intervalNs, Timeout: check.timeoutNs, StartPeriod: check.startPeriodNs, StartInterval: check.startIntervalNs, Retries: check.retries }).filter(
            ([, value]) => value !== undefined && value !== 0,
          ),
        );
        this.container.Healthcheck = healthcheck;
        this.record(`HEALTHCHECK ${JSON.stringify(healthcheck)}`);
        return;
      }
      case 'volume': {
        const volumes = instruction.volumes.map((volume) => this.expand(instruction, volume));
        if (volumes.some((volume) => volume === '')) throw this.fail(instruction, 'VOLUME specified can not be an empty string');
        this.container.Volumes ??= {};
        for (const volume of volumes) this.container.Volumes[volume] = {};
        this.record(`VOLUME [${volumes.join(' ')}]`);
        return;
      }
      case 'stopsignal': {
        const signal = this.expand(instruction, instruction.signal);
        if (!validSignal(signal)) throw this.fail(instruction, `invalid signal: ${signal}`);
        this.container.StopSignal = signal;
        this.record(`STOPSIGNAL ${signal}`);
        return;
      }
      case 'maintainer':
        this.config.author = instruction.maintainer;
        this.record(`MAINTAINER ${instruction.maintainer}`);
        return;
      case 'onbuild':
        this.container.OnBuild = [...(this.container.OnBuild ?? []), instruction.expression];
        return;
      case 'run':
        throw this.fail(instruction, 'RUN needs a container runtime, which the assemble builder does not have. Move the step into a script step before this task, or use the BuildKit builder.');
      case 'copy':
      case 'add':
        return this.copy(instruction);
    }
  }

  private async workdir(instruction: InstructionOf<'workdir'>): Promise<void> {
    const path = this.expand(instruction, instruction.path);
    const current = this.container.WorkingDir || '/';
    const workdir = path.startsWith('/') ? cleanPath(path) : cleanPath(posix.join(current, path || '.'));
    this.container.WorkingDir = workdir;
    let layer: Layer | undefined;
    if (workdir !== '/') {
      layer = this.filesystem.newLayer(`WORKDIR ${workdir}`);
      const owner = this.container.User ? await this.owner(instruction, this.container.User) : undefined;
      const resolved = await resolveDestination(this.filesystem, workdir, this.where(instruction));
      await makeDirectories(this.filesystem, layer, resolved, { mode: 0o755, owner }, this.where(instruction));
    }
    this.record(`WORKDIR ${workdir}`, layer);
  }

  /** `--chown`/USER: numbers as they are, names from the stage's own /etc/passwd and /etc/group. */
  private async owner(instruction: { line: number }, spec: string): Promise<Owner | undefined> {
    const [user, group] = spec.includes(':') ? [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)] : [spec, undefined];
    const numeric = (text: string) => (text === 'root' ? 0 : /^[+-]?\d+$/.test(text) && Math.abs(Number(text)) < 2 ** 31 ? Number(text) : undefined);
    let uid = 0;
    let gid = 0;
    const byId = numeric(user);
    if (byId !== undefined) {
      uid = byId;
      gid = byId;
    } else {
      const entry = (await this.accountFile(instruction, '/etc/passwd', spec)).find((fields) => fields[0] === user);
      if (!entry) throw this.fail(instruction, `the user '${user}' is not in this stage's /etc/passwd. Use numeric ids (for example 1000:1000), or add the user to the base image.`);
      uid = Number(entry[2]);
      gid = Number(entry[3]);
    }
    if (group !== undefined) {
      const groupId = numeric(group);
      if (groupId !== undefined) gid = groupId;
      else {
        const entry = (await this.accountFile(instruction, '/etc/group', spec)).find((fields) => fields[0] === group);
        if (!entry) throw this.fail(instruction, `the group '${group}' is not in this stage's /etc/group. Use a numeric group id, or add the group to the base image.`);
        gid = Number(entry[2]);
      }
    }
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid < 0 || gid < 0) throw this.fail(instruction, `'${spec}' does not name a valid user and group.`);
    return uid === 0 && gid === 0 ? undefined : { uid, gid };
  }

  private async accountFile(instruction: { line: number }, path: string, spec: string): Promise<string[][]> {
    const resolved = await resolveDestination(this.filesystem, path, this.where(instruction));
    const node = await this.filesystem.node(resolved);
    if (!node?.content) throw this.fail(instruction, `'${spec}' names a user or group, but this stage has no ${path}. Use numeric ids, for example 1000:1000.`);
    const chunks: Buffer[] = [];
    for await (const chunk of node.content.open() as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks)
      .toString('utf8')
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => line.split(':'));
  }

  private async sourceTree(instruction: InstructionOf<'copy' | 'add'>): Promise<SourceTree> {
    if (!instruction.from) return this.options.context;
    const from = instruction.from;
    const stage = /^\d+$/.test(from) ? this.options.plan.dockerfile.stages[Number(from)] : this.options.plan.dockerfile.stages.find((candidate) => candidate.name === from.toLowerCase());
    if (stage) {
      const built = this.built.get(stage);
      if (!built) throw this.fail(instruction, `cannot copy from stage "${from}", it needs to be defined before current stage "${this.stage.name ?? this.stage.index}".`);
      await built.filesystem.settleImpliedDirs();
      return new StageTree(`stage "${from}"`, built.filesystem);
    }
    if (/^\d+$/.test(from)) throw this.fail(instruction, `invalid stage index ${from}: the Dockerfile has ${this.options.plan.dockerfile.stages.length} stages.`);
    const image = await this.image(from, this.options.platform, this.where(instruction));
    return new StageTree(`image ${formatImageName(image.name)}`, new StageFilesystem(image.files));
  }

  private async copy(instruction: InstructionOf<'copy' | 'add'>): Promise<void> {
    const name = instruction.kind.toUpperCase();
    const paths = instruction.sources.map((source) => this.expand(instruction, source.path));
    const remote = paths.filter(isRemote);
    if (remote.length > 0) {
      throw this.fail(instruction, `ADD ${remote[0]} downloads at build time, which the assemble builder does not do. Download it in a script step and COPY it, or use the BuildKit builder.`);
    }
    if (instruction.remoteOptions.length > 0) throw this.fail(instruction, `--${instruction.remoteOptions[0]} applies to URL and Git sources only.`);
    if (instruction.parents) throw this.fail(instruction, 'COPY --parents is not supported by the assemble builder; copy each folder with its own COPY, or use the BuildKit builder.');
    const chownText = instruction.chown ? this.expand(instruction, instruction.chown) : '';
    const chmodText = instruction.chmod ? this.expand(instruction, instruction.chmod) : '';
    let chmod: ChmodSpec | undefined;
    if (chmodText) {
      try {
        chmod = parseChmod(chmodText);
      } catch (error) {
        throw this.fail(instruction, (error as Error).message);
      }
    }
    const destText = this.expand(instruction, instruction.dest);
    const workdir = this.container.WorkingDir || '/';
    const keepSlash = destText.endsWith('/') || destText.endsWith('/.') || destText === '.' || destText === '';
    const joined = destText.startsWith('/') ? destText : posix.join(workdir, destText || '.');
    const dest = cleanPath(joined) + (keepSlash && cleanPath(joined) !== '/' ? '/' : '');
    const inline = instruction.inline.map((source) => ({
      name: source.name,
      content: source.expand ? expandAt(this.options.plan.file, instruction, source.content, this.variables, '\\') : source.content,
    }));
    const flags = [chownText && `--chown=${chownText}`, chmodText && `--chmod=${chmodText}`].filter(Boolean);
    const createdBy = [name, ...flags, ...paths, ...inline.map((source) => `<<${source.name}`), destText].join(' ');
    const source = await this.sourceTree(instruction);
    const owner = chownText ? await this.owner(instruction, chownText) : undefined;
    const excludes = instruction.excludes.length > 0 ? new IgnoreMatcher(instruction.excludes.map((pattern) => this.expand(instruction, pattern))) : undefined;
    // --link (without --chmod, as in BuildKit) copies onto an empty file system: the layer holds its
    // own parent folders and does not depend on what the stage holds.
    const linked = instruction.link && !chmod;
    const target = linked ? new StageFilesystem(SCRATCH) : this.filesystem;
    const layer = linked ? target.newLayer(createdBy) : this.filesystem.newLayer(createdBy);
    await copyIntoStage({
      instruction: name,
      where: this.where(instruction),
      source,
      paths,
      inline,
      dest,
      owner,
      chmod,
      excludes,
      unpackArchives: instruction.kind === 'add' && instruction.unpack !== false && !instruction.from,
      scratch: this.options.scratch,
      filesystem: target,
      layer,
    });
    if (linked) {
      const merged = this.filesystem.newLayer(createdBy);
      for (const [path, node] of layer.entries) this.filesystem.write(merged, path, node);
      this.record(createdBy, merged);
    } else this.record(createdBy, layer);
  }
}
