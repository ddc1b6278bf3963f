import * as tl from 'azure-pipelines-task-lib/task.js';
import { InputError } from '../../src/errors.js';
import { parseRegistryHost, validateRepository } from '../../src/oci/reference.js';
import type { RegistryAuth } from '../../src/acr/session.js';
import { optionalInput } from '../common/inputs.js';
import { readRegistryAuth } from '../common/registryAuth.js';

/** The task.json inputs of PrivateAcrPushChart@1, validated. Names match task.json exactly. */
export interface PushChartInputs {
  auth: RegistryAuth;
  registry: string;
  chartPath: string;
  /** Namespace in the registry; the chart lands at `<repository>/<chart name>`. */
  repository: string;
  chartVersion?: string;
  appVersion?: string;
  /**
   * The reproducible-builds convention: when the pipeline sets SOURCE_DATE_EPOCH (for example to
   * the commit time), packaged entries and the `created` annotation carry it instead of 1970.
   */
  sourceDateEpoch: number;
}

export function readInputs(): PushChartInputs {
  return {
    auth: readRegistryAuth(),
    registry: parseRegistryHost(tl.getInput('registry', true)!),
    chartPath: tl.getPathInput('chartPath', true)!,
    repository: validateRepository(tl.getInput('repository') || 'helm'),
    chartVersion: optionalInput('chartVersion'),
    appVersion: optionalInput('appVersion'),
    sourceDateEpoch: readSourceDateEpoch(),
  };
}

function readSourceDateEpoch(): number {
  const value = tl.getVariable('SOURCE_DATE_EPOCH')?.trim();
  if (!value) return 0;
  if (!/^\d{1,11}$/.test(value)) throw new InputError('SOURCE_DATE_EPOCH', `'${value}' is not a time in whole seconds since 1970; set it to, for example, the commit time (git log -1 --format=%ct).`);
  return Number(value);
}
