import * as tl from 'azure-pipelines-task-lib/task.js';
import { IMDS_ENDPOINT, type AzureIdentity } from '../../src/azure/entra.js';
import { InputError } from '../../src/errors.js';

const PUBLIC_CLOUD_AUTHORITY = 'https://login.microsoftonline.com/';

/**
 * The identity of an AzureRM service connection. The authority comes from the connection (so
 * sovereign clouds and Azure Stack work) and no other host is contacted.
 */
export function readServiceConnectionIdentity(input: string): AzureIdentity {
  const id = tl.getInput(input, true)!;
  const scheme = tl.getEndpointAuthorizationScheme(id, true);
  const parameter = (key: string) => tl.getEndpointAuthorizationParameter(id, key, true);
  const authorityUrl = tl.getEndpointDataParameter(id, 'environmentAuthorityUrl', true) || PUBLIC_CLOUD_AUTHORITY;
  const tenantId = parameter('tenantid');
  const clientId = parameter('serviceprincipalid');
  const missing = (what: string) => new InputError(input, `the service connection has no ${what}; edit the connection and save it again.`);

  switch (scheme) {
    case 'ServicePrincipal': {
      if (!tenantId || !clientId) throw missing('tenant or service principal id');
      if (parameter('authenticationType') === 'spnCertificate') {
        const certificatePem = parameter('servicePrincipalCertificate');
        if (!certificatePem) throw missing('certificate');
        return { kind: 'clientCertificate', authorityUrl, tenantId, clientId, certificatePem };
      }
      const clientSecret = parameter('serviceprincipalkey');
      if (!clientSecret) throw missing('service principal key');
      return { kind: 'clientSecret', authorityUrl, tenantId, clientId, clientSecret };
    }
    case 'WorkloadIdentityFederation': {
      if (!tenantId || !clientId) throw missing('tenant or service principal id');
      const systemAccessToken = tl.getEndpointAuthorizationParameter('SystemVssConnection', 'AccessToken', true);
      if (!systemAccessToken) {
        throw new InputError(input, 'workload identity federation needs the job access token (System.AccessToken), which this job does not have.');
      }
      return { kind: 'federated', authorityUrl, tenantId, clientId, assertion: { kind: 'devopsOidc', oidcRequestUri: oidcRequestUri(), serviceConnectionId: id, systemAccessToken } };
    }
    case 'ManagedServiceIdentity':
      return { kind: 'managedIdentity', endpoint: imdsEndpoint(), clientId: clientId || undefined };
    default:
      throw new InputError(input, `the connection uses the '${scheme ?? 'unknown'}' scheme; use a service principal, workload identity federation or managed identity connection.`);
  }
}

/**
 * The agent pod's own identity: AKS workload identity when the webhook injected its variables,
 * otherwise the node's managed identity (AZURE_CLIENT_ID picks a user-assigned one).
 */
export function readAgentIdentity(): AzureIdentity {
  const clientId = process.env.AZURE_CLIENT_ID;
  const tokenFile = process.env.AZURE_FEDERATED_TOKEN_FILE;
  if (tokenFile) {
    const tenantId = process.env.AZURE_TENANT_ID;
    if (!clientId || !tenantId) {
      throw new InputError('authMode', 'agentIdentity found AZURE_FEDERATED_TOKEN_FILE but not AZURE_CLIENT_ID and AZURE_TENANT_ID; label the pod for AKS workload identity.');
    }
    const authorityUrl = process.env.AZURE_AUTHORITY_HOST || PUBLIC_CLOUD_AUTHORITY;
    return { kind: 'federated', authorityUrl, tenantId, clientId, assertion: { kind: 'tokenFile', path: tokenFile } };
  }
  return { kind: 'managedIdentity', endpoint: imdsEndpoint(), clientId };
}

/** Azure's SDKs honour the same override, which lets pod-identity setups move IMDS. */
function imdsEndpoint(): string {
  return process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST || IMDS_ENDPOINT;
}

function oidcRequestUri(): string {
  const direct = tl.getVariable('System.OidcRequestUri');
  if (direct) return direct;
  const collection = tl.getVariable('System.CollectionUri') ?? '';
  const parts = ['System.TeamProjectId', 'System.HostType', 'System.PlanId', 'System.JobId'].map((name) => tl.getVariable(name) ?? '');
  const [project, hub, plan, job] = parts;
  return `${collection.replace(/\/?$/, '/')}${project}/_apis/distributedtask/hubs/${hub}/plans/${plan}/jobs/${job}/oidctoken`;
}
