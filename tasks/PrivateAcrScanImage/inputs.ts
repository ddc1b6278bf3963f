import { join } from 'node:path';
import * as tl from 'azure-pipelines-task-lib/task.js';
import { InputError } from '../../src/errors.js';
import { parseImageReference, parseRegistryHost, type ImageReference } from '../../src/oci/reference.js';
import { parseFailOn } from '../../src/scan/gate.js';
import type { ScanImageOptions } from '../../src/scan/scanImage.js';
import { agentTempDirectory } from '../common/host.js';
import { durationInput, optionalInput } from '../common/inputs.js';
import { readRegistryAuth } from '../common/registryAuth.js';

/**
 * The task.json inputs of PrivateAcrScanImage@1, validated, as the scan takes them (the JUnit
 * report's path is not an input: it goes beside the SARIF one).
 */
export type ScanImageInputs = Pick<
  ScanImageOptions,
  'auth' | 'registry' | 'subject' | 'databaseRepository' | 'javaDatabaseRepository' | 'failOn' | 'ignoreUnfixed' | 'ignoreFile' | 'maxDatabaseAgeMs' | 'reportPath' | 'junitPath'
>;

export function readInputs(): ScanImageInputs {
  const registry = parseRegistryHost(tl.getInput('registry', true)!);
  const reportPath = optionalInput('reportPath') ?? join(agentTempDirectory(), `scan-image-${Date.now()}.sarif`);
  return {
    auth: readRegistryAuth(),
    registry,
    subject: readSubject(registry),
    databaseRepository: readRepository('databaseRepository', 'aquasecurity/trivy-db:2', registry),
    javaDatabaseRepository: readRepository('javaDatabaseRepository', 'aquasecurity/trivy-java-db:1', registry),
    failOn: parseFailOn(optionalInput('failOn') ?? 'CRITICAL,HIGH'),
    ignoreUnfixed: tl.getBoolInput('ignoreUnfixed'),
    // An empty filePath input arrives as the sources folder; only a path the pipeline set counts.
    ignoreFile: tl.filePathSupplied('ignoreFile') ? tl.getPathInput('ignoreFile', false, true) : undefined,
    maxDatabaseAgeMs: durationInput('maxDatabaseAge', '72h') * 1000,
    reportPath,
    junitPath: reportPath.replace(/(\.sarif)?$/i, '.junit.xml'),
  };
}

function readSubject(registry: string): ScanImageInputs['subject'] {
  const image = optionalInput('image');
  const imagePath = tl.filePathSupplied('imagePath') ? tl.getPathInput('imagePath') : undefined;
  if (image && imagePath) throw new InputError('image', 'and imagePath are both set; scan either the image in the registry or the one on disk.');
  if (imagePath) return { kind: 'imagePath', path: imagePath };
  if (!image) throw new InputError('image', 'is empty; name the image in the registry (for example $(push.imageRef)), or set imagePath to scan one on disk.');
  const reference = parseImageReference(image, 'image');
  if (reference.host && reference.host !== registry) {
    throw new InputError('image', `names the registry ${reference.host}, but registry is ${registry}; scan images of ${registry}, or import the image there first.`);
  }
  return { kind: 'image', reference };
}

/** `repository:tag` in the registry, or `host/repository:tag` anywhere the identity can read. */
function readRepository(input: string, fallback: string, registry: string): ImageReference {
  const reference = parseImageReference(optionalInput(input) ?? fallback, input);
  return { ...reference, host: reference.host ?? registry };
}
