// The PrivateAcrBuildImage task without Azure DevOps: choose the builder for the Dockerfile, build,
// push (blobs first, tags last) and optionally write an OCI layout.
import { UserError } from '../errors.js';
import type { BuildSecret } from './options.js';
import type { Blocker } from './stages.js';

export type BuilderChoice = 'auto' | 'assemble' | 'buildkit';

/** Where and how the BuildKit builder reaches its daemon (the `buildkit*`, `cacheRepository` and `buildSecrets` inputs). */
export interface BuildkitSettings {
  /** `tcp://host:port` of the daemon. */
  address?: string;
  /** Folder with ca.pem, cert.pem and key.pem. */
  certificates?: string;
  cacheRepository?: string;
  secrets: BuildSecret[];
}

/**
 * `auto` takes assemble when nothing the target needs requires a runtime, else BuildKit when the
 * pipeline gave a daemon's address; otherwise the first such step is the error.
 */
export function chooseBuilder(choice: BuilderChoice, blockers: Blocker[], buildkit: BuildkitSettings): 'assemble' | 'buildkit' {
  const wanted = choice === 'auto' ? (blockers.length === 0 ? 'assemble' : buildkit.address ? 'buildkit' : 'assemble') : choice;
  if (wanted === 'buildkit') {
    const why = choice === 'auto' ? `${blockers[0].where}: ${blockers[0].reason}; ` : '';
    throw new UserError(`${why}Input 'builder': the BuildKit builder is not available yet in this version of the task; use builder: assemble with a Dockerfile whose steps need no runtime (run RUN steps in a script step before this task).`);
  }
  return wanted;
}
