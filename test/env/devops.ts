// Azure DevOps stand-in for workload identity federation: the job-scoped OIDC token endpoint
// `POST {collectionUri}{project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken?serviceConnectionId=…`
// (also what `System.OidcRequestUri` points at). It answers `{"oidcToken"}` with a fresh JWT shaped
// like Azure DevOps' own: iss `https://vstoken.dev.azure.com/<org id>`, sub `sc://<org>/<project>/<connection>`.
import { randomBytes, randomUUID, type JsonWebKey } from 'node:crypto';
import type { TestCa } from './ca.js';
import { FEDERATED_TOKEN_AUDIENCE } from './entra.js';
import { bearerToken, requestUrl, sendJson, startServer } from './http.js';
import { createJwtIssuer, decodeJwt, type IssuedToken } from './jwt.js';

export interface DevOpsRequest {
  method: string;
  path: string;
  serviceConnectionId?: string;
  apiVersion?: string;
  /** Whether the request carried the job's System.AccessToken. */
  authorized: boolean;
  status: number;
}

export interface ServiceConnection {
  id: string;
  name: string;
  /** The `sub` of its OIDC tokens, what the Entra federated credential must name. */
  subject: string;
}

export interface StartDevOpsOptions {
  ca: TestCa;
  /** Default `contoso`. */
  organization?: string;
  /** Default `web`. */
  projectName?: string;
}

export interface DevOpsStandIn {
  /** `https://127.0.0.1:<port>/<organization>/` — System.CollectionUri, ending in '/'. */
  collectionUri: string;
  organization: string;
  organizationId: string;
  /** System.TeamProjectId (a GUID). The route accepts the project name too. */
  projectId: string;
  projectName: string;
  /** System.PlanId, System.JobId and System.HostType of the one job this stand-in serves. */
  planId: string;
  jobId: string;
  hub: string;
  /** System.AccessToken: the bearer the OIDC endpoint requires. */
  systemAccessToken: string;
  /** System.OidcRequestUri (without query). */
  oidcRequestUri: string;
  /** `https://vstoken.dev.azure.com/<organizationId>`. */
  issuer: string;
  /** The OIDC tokens' signing key, for `entra.addFederatedClient`. */
  publicJwk: JsonWebKey;
  subjectFor(connectionName: string): string;
  /** Registers an AzureRM service connection; the endpoint refuses ids it does not know. */
  addServiceConnection(name: string, id?: string): ServiceConnection;
  /** Lifetime of the OIDC tokens issued from now on (Azure DevOps: about 10 minutes). Default 600. */
  oidcTokenLifetimeSeconds: number;
  requests: DevOpsRequest[];
  issuedTokens: IssuedToken[];
  stop(): Promise<void>;
}

/** Azure DevOps' error body: `{"$id","innerException","message","typeName","typeKey","errorCode","eventId"}`. */
export function devOpsError(message: string, typeKey: string): Record<string, unknown> {
  return { $id: '1', innerException: null, message, typeName: `Microsoft.TeamFoundation.DistributedTask.WebApi.${typeKey}, Microsoft.TeamFoundation.DistributedTask.WebApi`, typeKey, errorCode: 0, eventId: 3000 };
}

export async function startDevOps(options: StartDevOpsOptions): Promise<DevOpsStandIn> {
  const organization = options.organization ?? 'contoso';
  const projectName = options.projectName ?? 'web';
  const organizationId = randomUUID();
  const projectId = randomUUID();
  const planId = randomUUID();
  const jobId = randomUUID();
  const hub = 'build';
  const systemAccessToken = randomBytes(32).toString('base64url');
  const issuer = `https://vstoken.dev.azure.com/${organizationId}`;
  const [tls, oidcIssuer] = await Promise.all([
    options.ca.issue(`devops-${randomUUID()}`, ['127.0.0.1', 'localhost']),
    createJwtIssuer(issuer),
  ]);
  const connections = new Map<string, ServiceConnection>();
  const requests: DevOpsRequest[] = [];
  const issuedTokens: IssuedToken[] = [];
  const subjectFor = (connectionName: string) => `sc://${organization}/${projectName}/${connectionName}`;
  const oidcPath = new RegExp(`^/${organization}/([^/]+)/_apis/distributedtask/hubs/([^/]+)/plans/([^/]+)/jobs/([^/]+)/oidctoken$`);

  const server = await startServer((req, res) => {
    const url = requestUrl(req);
    const record: DevOpsRequest = {
      method: req.method ?? '',
      path: url.pathname,
      serviceConnectionId: url.searchParams.get('serviceConnectionId') ?? undefined,
      apiVersion: url.searchParams.get('api-version') ?? undefined,
      authorized: bearerToken(req) === systemAccessToken,
      status: 0,
    };
    requests.push(record);
    const answer = (status: number, body: unknown) => {
      record.status = status;
      sendJson(res, status, body);
    };
    req.resume();
    const match = oidcPath.exec(url.pathname);
    if (!match || req.method !== 'POST') return answer(404, devOpsError(`No route for ${req.method ?? ''} ${url.pathname}`, 'RouteNotFoundException'));
    // Azure DevOps answers 401 before looking at anything else when the bearer is missing or wrong.
    if (!record.authorized) return answer(401, devOpsError('TF400813: The user is not authorized to access this resource.', 'UnauthorizedRequestException'));
    const [, project, requestHub, requestPlan, requestJob] = match;
    if ((project !== projectId && project !== projectName) || requestHub !== hub || requestPlan !== planId || requestJob !== jobId) {
      return answer(404, devOpsError(`Plan ${requestPlan} or job ${requestJob} not found in ${project}.`, 'TaskOrchestrationPlanNotFoundException'));
    }
    if (!record.apiVersion) return answer(400, devOpsError('No api-version was supplied for the POST request.', 'VssVersionNotSpecifiedException'));
    const connection = record.serviceConnectionId === undefined ? undefined : connections.get(record.serviceConnectionId);
    if (!connection) return answer(400, devOpsError(`Service connection ${record.serviceConnectionId ?? '(none)'} was not found.`, 'ServiceEndpointNotFoundException'));
    const claims = { sub: connection.subject, aud: FEDERATED_TOKEN_AUDIENCE };
    const token = oidcIssuer.sign(claims, standIn.oidcTokenLifetimeSeconds);
    issuedTokens.push({ token, claims: decodeJwt(token).claims });
    answer(200, { oidcToken: token });
  }, tls);

  const collectionUri = `${server.url}/${organization}/`;
  const standIn: DevOpsStandIn = {
    collectionUri,
    organization,
    organizationId,
    projectId,
    projectName,
    planId,
    jobId,
    hub,
    systemAccessToken,
    oidcRequestUri: `${collectionUri}${projectId}/_apis/distributedtask/hubs/${hub}/plans/${planId}/jobs/${jobId}/oidctoken`,
    issuer,
    publicJwk: oidcIssuer.publicJwk,
    subjectFor,
    addServiceConnection(name, id = randomUUID()) {
      const connection = { id, name, subject: subjectFor(name) };
      connections.set(id, connection);
      return connection;
    },
    oidcTokenLifetimeSeconds: 600,
    requests,
    issuedTokens,
    stop: () => server.stop(),
  };
  return standIn;
}
