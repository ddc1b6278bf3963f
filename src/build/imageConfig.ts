// The image configuration a build produces (opencontainers/image-spec config.md, with the fields
// Docker adds: Healthcheck, Shell, OnBuild, ArgsEscaped) and the platform it is for.
import { InputError } from '../errors.js';

export interface HealthcheckConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: HealthcheckConfig;
  Shell?: string[];
  OnBuild?: string[] | null;
  ArgsEscaped?: boolean;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  config: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The `PATH` BuildKit sets when an image has none (moby/buildkit util/system DefaultPathEnvUnix). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const ARCHITECTURE_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' };

/**
 * `os/arch[/variant]` normalised as containerd's platforms package does (aarch64 is arm64 without
 * a variant, arm defaults to v7), so `linux/arm64` and `linux/arm64/v8` name the same platform.
 */
export function parsePlatform(text: string, input = 'platforms'): Platform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[a-z0-9_.-]+$/.test(part))) {
    throw new InputError(input, `'${text}' is not a platform; write os/architecture[/variant], for example linux/amd64 or linux/arm64.`);
  }
  const [os, rawArchitecture, rawVariant] = parts;
  const architecture = ARCHITECTURE_ALIASES[rawArchitecture] ?? rawArchitecture;
  let variant: string | undefined = rawVariant;
  if (architecture === 'arm64' && (variant === '8' || variant === 'v8')) variant = undefined;
  if (architecture === 'arm' && !variant) variant = 'v7';
  if (architecture === 'arm' && variant && /^\d$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** Whether an image's platform serves the wanted one (a missing variant in the image matches any). */
export function platformMatches(image: Partial<Platform>, wanted: Platform): boolean {
  if (!image.os || !image.architecture) return false;
  const normalised = parsePlatform([image.os, image.architecture, image.variant].filter(Boolean).join('/'));
  if (normalised.os !== wanted.os || normalised.architecture !== wanted.architecture) return false;
  return !image.variant || !wanted.variant || normalised.variant === wanted.variant;
}

/** The Node.js process's own platform, which is what BuildKit calls the build platform. */
export function hostPlatform(): Platform {
  const architecture = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', ppc64: 'ppc64le' } as Record<string, string>)[process.arch] ?? process.arch;
  return parsePlatform(`linux/${architecture}`);
}
