import { readFileSync } from 'node:fs';
import * as tl from 'azure-pipelines-task-lib/task.js';
import { stringify } from 'yaml';
import type { ClusterConnection, Deployment } from '../../src/deploy/deploy.js';
import { parseImageSubstitutions } from '../../src/deploy/manifests.js';
import type { AzureIdentity } from '../../src/azure/entra.js';
import { InputError } from '../../src/errors.js';
import { readArmConnection } from '../common/armConnection.js';
import { readAgentIdentity, readServiceConnectionIdentity } from '../common/azureIdentity.js';
import { durationInput, listInput, optionalInput, requiredInput } from '../common/inputs.js';

/** The task.json inputs of PrivateAksDeploy@1, validated. Names match task.json exactly. */
interface DeployInputs {
  connection: ClusterConnection;
  identity?: AzureIdentity;
  namespace?: string;
  deployment: Deployment;
}

export function readInputs(): DeployInputs {
  const connectionType = tl.getInput('connectionType', true)!;
  const namespace = optionalInput('namespace');
  if (namespace && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) throw new InputError('namespace', `'${namespace}' is not a valid namespace name (lower-case letters, digits and '-').`);
  const deployment = readDeployment();
  switch (connectionType) {
    case 'inCluster':
      return { connection: { kind: 'inCluster' }, identity: readRegistryIdentity(), namespace, deployment };
    case 'kubeconfig':
      return { connection: readKubeconfigConnection(), identity: readRegistryIdentity(), namespace, deployment };
    case 'azureResourceManager':
    case 'runCommand': {
      const { identity, arm } = readArmConnection('azureSubscription');
      const cluster = { arm, resourceGroup: requiredInput('resourceGroup', 'is required for this connection type.'), cluster: requiredInput('cluster', 'is required for this connection type.') };
      const connection: ClusterConnection =
        connectionType === 'runCommand' ? { kind: 'runCommand', cluster } : { kind: 'azureResourceManager', cluster, admin: tl.getBoolInput('useClusterAdmin') };
      return { connection, identity, namespace, deployment };
    }
    default:
      throw new InputError('connectionType', `'${connectionType}' is not one of inCluster, azureResourceManager, kubeconfig, runCommand.`);
  }
}


/** The Azure identity that pulls `oci://` charts when the cluster connection is not an Azure one. */
function readRegistryIdentity(): AzureIdentity | undefined {
  const mode = tl.getInput('authMode') || 'serviceConnection';
  switch (mode) {
    case 'serviceConnection':
      return tl.getInput('azureSubscription') ? readServiceConnectionIdentity('azureSubscription') : undefined;
    case 'agentIdentity':
      return readAgentIdentity();
    case 'none':
      return undefined;
    default:
      throw new InputError('authMode', `'${mode}' is not one of serviceConnection, agentIdentity, none.`);
  }
}

function readKubeconfigConnection(): ClusterConnection {
  const id = tl.getInput('kubernetesServiceConnection');
  if (id) return readKubernetesServiceConnection(id);
  const path = tl.getInput('kubeconfigPath');
  if (!path) throw new InputError('kubeconfigPath', 'give a Kubernetes service connection or the path of a kubeconfig file.');
  let kubeconfig: string;
  try {
    kubeconfig = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError('kubeconfigPath', `cannot read ${path} (${(error as NodeJS.ErrnoException).code}).`);
  }
  return { kind: 'kubeconfig', kubeconfig, source: `kubeconfig file ${path}` };
}

/**
 * A Kubernetes service connection: `Kubeconfig` carries the document (and optionally a context);
 * `ServiceAccount` a base64 token and base64 CA for the connection's URL, turned into a kubeconfig.
 */
function readKubernetesServiceConnection(id: string): ClusterConnection {
  const type = tl.getEndpointDataParameter(id, 'authorizationType', true) || 'Kubeconfig';
  const parameter = (key: string) => tl.getEndpointAuthorizationParameter(id, key, true);
  const source = `Kubernetes service connection ${id}`;
  if (type === 'Kubeconfig') {
    const kubeconfig = parameter('kubeconfig');
    if (!kubeconfig) throw new InputError('kubernetesServiceConnection', 'the connection holds no kubeconfig; edit it and paste one.');
    return { kind: 'kubeconfig', kubeconfig, context: parameter('clusterContext') || undefined, source };
  }
  if (type === 'ServiceAccount') {
    const token = Buffer.from(parameter('apiToken') ?? '', 'base64').toString('utf8');
    const ca = parameter('serviceAccountCertificate');
    const server = tl.getEndpointUrl(id, true);
    if (!token || !server) throw new InputError('kubernetesServiceConnection', 'the service account connection has no server URL or token.');
    tl.setSecret(token);
    const kubeconfig = stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'connection', cluster: { server, ...(ca ? { 'certificate-authority-data': ca } : {}) } }],
      users: [{ name: 'connection', user: { token } }],
      contexts: [{ name: 'connection', context: { cluster: 'connection', user: 'connection' } }],
      'current-context': 'connection',
    });
    return { kind: 'kubeconfig', kubeconfig, source };
  }
  throw new InputError('kubernetesServiceConnection', `the connection uses '${type}'; for an Azure subscription connection choose connectionType azureResourceManager instead.`);
}

function readDeployment(): Deployment {
  const deployType = tl.getInput('deployType', true)!;
  if (deployType === 'helm') {
    const releaseName = tl.getInput('releaseName', true)!.trim();
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(releaseName) || releaseName.length > 53) {
      throw new InputError('releaseName', `'${releaseName}' is not a valid release name (at most 53 lower-case letters, digits and '-').`);
    }
    return {
      kind: 'helm',
      release: {
        releaseName,
        chart: tl.getInput('chart', true)!.trim(),
        chartVersion: optionalInput('chartVersion'),
        valueFiles: listInput('valueFiles'),
        overrides: listInput('overrides'),
        atomic: tl.getBoolInput('atomic'),
        timeoutSeconds: durationInput('timeout', '5m'),
        createNamespace: tl.getBoolInput('createNamespace'),
      },
    };
  }
  if (deployType === 'manifests') {
    const patterns = listInput('manifests');
    const root = tl.getVariable('System.DefaultWorkingDirectory') || process.cwd();
    const files = tl.findMatch(root, patterns).filter((path) => tl.stats(path).isFile());
    return { kind: 'manifests', files, images: parseImageSubstitutions(listInput('images')), rolloutTimeoutSeconds: durationInput('rolloutTimeout', '5m') };
  }
  throw new InputError('deployType', `'${deployType}' is not one of helm, manifests.`);
}
