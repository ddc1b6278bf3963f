// Azure DevOps stand-in for agent pools: what KEDA's azure-pipelines scaler reads
// (kedacore/keda pkg/scalers/azure_pipelines_scaler.go, v2.20.2) and what agents and the image's
// cleanup mode call — api-version 7.1 of the distributedtask REST area:
//   GET    {org}/_apis/distributedtask/pools?poolName=NAME             → {count, value: [pool]}
//   GET    {org}/_apis/distributedtask/pools/{id}/jobrequests          → {count, value: [job request]}
//            ?completedRequestCount=0 unfinished requests only (KEDA's fetchUnfinishedJobsOnly),
//            ?$top=N the N newest
//   GET    {org}/_apis/distributedtask/pools/{id}/agents               → {count, value: [agent]}
//            ?agentName=, ?includeCapabilities=true, ?includeAssignedRequest=true
//   POST   {org}/_apis/distributedtask/pools/{id}/agents               register (config.sh)
//   PUT    {org}/_apis/distributedtask/pools/{id}/agents/{agentId}     replace (config.sh --replace)
//   DELETE {org}/_apis/distributedtask/pools/{id}/agents/{agentId}     remove → 204
// Authentication as Azure DevOps takes it: Basic with a PAT as the password, or an Entra access
// token for Azure DevOps (audience 499b84ac-…) as a bearer or as that password.
// A job request lists in `matchedAgents` every agent of the pool whose capabilities satisfy its
// demands — offline ones included, which is what lets a never-running placeholder agent stand for
// agents KEDA has not started yet. A job no agent can satisfy fails at once, as Azure DevOps fails
// it with "No agent found in pool … which satisfies the specified demands".
import { randomUUID } from 'node:crypto';
import type * as http from 'node:http';
import type { TestCa } from './ca.js';
import { devOpsError } from './devops.js';
import { basicCredentials, bearerToken, readBody, requestUrl, sendJson, startServer } from './http.js';
import type { JwtClaims } from './jwt.js';

/** Azure DevOps' application ID in Entra: the audience of tokens it accepts. */
export const DEVOPS_RESOURCE = '499b84ac-1321-427f-aa17-267ca6975798';

export interface PoolRecord {
  id: number;
  name: string;
}

export interface AgentRecord {
  id: number;
  poolId: number;
  name: string;
  version: string;
  enabled: boolean;
  status: 'online' | 'offline';
  createdOn: string;
  statusChangedOn?: string;
  /** What the agent reported (its environment and Agent.*), matched against demands. */
  systemCapabilities: Record<string, string>;
  userCapabilities: Record<string, string>;
  /** The request the agent is running, if any. */
  assignedRequestId?: number;
}

export interface JobRequestRecord {
  requestId: number;
  poolId: number;
  demands: string[];
  queueTime: string;
  assignTime?: string;
  receiveTime?: string;
  finishTime?: string;
  /** `null` until the job ends: `succeeded`, `failed`, `canceled`… */
  result: string | null;
  reservedAgentId?: number;
  planId: string;
  jobId: string;
  definitionName: string;
}

export interface AgentApiRequest {
  method: string;
  path: string;
  /** The query string, `?…` or empty. */
  query: string;
  /** How the caller authenticated: `pat`, `entra`, or `none` when refused. */
  auth: 'pat' | 'entra' | 'none';
  status: number;
}

export interface StartAgentPoolsOptions {
  ca: TestCa;
  /** Default `contoso`: the last segment of the organization URL, which KEDA reads as the name. */
  organization?: string;
  /** Checks an Entra access token (e.g. `entra.verifyAccessToken`); without it, only PATs are accepted. */
  verifyEntraToken?: (token: string) => JwtClaims;
}

export interface AgentPoolsStandIn {
  /** `https://127.0.0.1:<port>/<organization>`: AZP_URL for agents, organizationURL for KEDA. */
  organizationUrl: string;
  addPool(name: string): PoolRecord;
  /** PATs the API accepts. */
  addPersonalAccessToken(token: string): void;
  /** Seeds an agent as if it had registered earlier (capabilities, status, time stamps). */
  addAgent(poolName: string, agent: Partial<Omit<AgentRecord, 'id' | 'poolId'>> & { name: string }): AgentRecord;
  agents(poolName: string): AgentRecord[];
  /** Queues a pipeline job with these demands; it fails at once when no agent satisfies them. */
  queueJob(poolName: string, demands: string[], definitionName?: string): JobRequestRecord;
  /** An agent took the job (Azure DevOps sets assignTime and receiveTime; KEDA stops counting it). */
  receiveJob(requestId: number, agentName: string): void;
  finishJob(requestId: number, result?: string): void;
  jobRequests(poolName: string): JobRequestRecord[];
  /** Agents whose capabilities satisfy every demand of the request (Azure DevOps' `matchedAgents`). */
  matchedAgents(request: JobRequestRecord): AgentRecord[];
  requests: AgentApiRequest[];
  stop(): Promise<void>;
}

/** Azure DevOps returns times in UTC with seven fractional digits; three are enough for clients. */
function timestamp(date = new Date()): string {
  return date.toISOString();
}

function compareVersions(a: string, b: string): number {
  const left = a.split('.').map(Number);
  const right = b.split('.').map(Number);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/**
 * Whether capabilities satisfy one demand: `name` (the capability exists), `name -equals value`,
 * or `name -gtVersion version` (what tasks' minimumAgentVersion adds). Capability names and
 * `-equals` values compare without regard to case.
 */
export function satisfiesDemand(capabilities: Record<string, string>, demand: string): boolean {
  const match = /^(\S+)(?:\s+-(equals|gtVersion)\s+(.+))?$/.exec(demand.trim());
  if (!match) return false;
  const [, name, operator, expected] = match;
  const entry = Object.entries(capabilities).find(([key]) => key.toLowerCase() === name.toLowerCase());
  if (!entry) return false;
  if (operator === 'equals') return entry[1].toLowerCase() === expected.trim().toLowerCase();
  if (operator === 'gtVersion') return compareVersions(entry[1], expected.trim()) >= 0;
  return true;
}

export async function startAgentPools(options: StartAgentPoolsOptions): Promise<AgentPoolsStandIn> {
  const organization = options.organization ?? 'contoso';
  const tls = await options.ca.issue(`devops-agents-${randomUUID()}`, ['127.0.0.1', 'localhost']);
  const pools = new Map<number, PoolRecord>();
  const agents = new Map<number, AgentRecord>();
  const jobs = new Map<number, JobRequestRecord>();
  const personalAccessTokens = new Set<string>();
  const requests: AgentApiRequest[] = [];
  let nextPoolId = 10;
  let nextAgentId = 100;
  let nextRequestId = 1000;

  const poolByName = (name: string): PoolRecord | undefined => [...pools.values()].find((pool) => pool.name.toLowerCase() === name.toLowerCase());
  const requirePool = (name: string): PoolRecord => poolByName(name) ?? (() => { throw new Error(`no pool ${name}`); })();
  const poolAgents = (poolId: number): AgentRecord[] => [...agents.values()].filter((agent) => agent.poolId === poolId);
  const capabilitiesOf = (agent: AgentRecord): Record<string, string> => ({ ...agent.systemCapabilities, ...agent.userCapabilities });
  const matchedAgents = (request: JobRequestRecord): AgentRecord[] =>
    poolAgents(request.poolId).filter((agent) => agent.enabled && request.demands.every((demand) => satisfiesDemand(capabilitiesOf(agent), demand)));

  function authenticate(req: http.IncomingMessage): AgentApiRequest['auth'] {
    const isEntraToken = (token: string): boolean => {
      if (!options.verifyEntraToken) return false;
      try {
        const claims = options.verifyEntraToken(token);
        return claims.aud === DEVOPS_RESOURCE;
      } catch {
        return false;
      }
    };
    const basic = basicCredentials(req);
    if (basic) {
      if (personalAccessTokens.has(basic.password)) return 'pat';
      return isEntraToken(basic.password) ? 'entra' : 'none';
    }
    const bearer = bearerToken(req);
    return bearer && isEntraToken(bearer) ? 'entra' : 'none';
  }

  function agentJson(agent: AgentRecord, url: URL): Record<string, unknown> {
    const href = `${standIn.organizationUrl}/_apis/distributedtask/pools/${agent.poolId}/agents/${agent.id}`;
    const json: Record<string, unknown> = {
      _links: { self: { href }, web: { href } },
      id: agent.id,
      name: agent.name,
      version: agent.version,
      osDescription: 'Linux',
      enabled: agent.enabled,
      status: agent.status,
      provisioningState: 'Provisioned',
      accessPoint: 'CodexAccessMapping',
      maxParallelism: 1,
      createdOn: agent.createdOn,
    };
    if (agent.statusChangedOn) json.statusChangedOn = agent.statusChangedOn;
    if (url.searchParams.get('includeCapabilities') === 'true') {
      json.systemCapabilities = agent.systemCapabilities;
      json.userCapabilities = agent.userCapabilities;
    }
    const assigned = agent.assignedRequestId === undefined ? undefined : jobs.get(agent.assignedRequestId);
    if (assigned && url.searchParams.get('includeAssignedRequest') === 'true') json.assignedRequest = jobJson(assigned);
    return json;
  }

  function agentReference(agent: AgentRecord): Record<string, unknown> {
    const href = `${standIn.organizationUrl}/_apis/distributedtask/pools/${agent.poolId}/agents/${agent.id}`;
    return { _links: { self: { href }, web: { href } }, id: agent.id, name: agent.name, version: agent.version, enabled: agent.enabled, status: agent.status, provisioningState: 'Provisioned' };
  }

  function jobJson(job: JobRequestRecord): Record<string, unknown> {
    const json: Record<string, unknown> = {
      requestId: job.requestId,
      queueTime: job.queueTime,
      serviceOwner: '00025394-6065-48ca-87d9-7f5672854ef7',
      hostId: randomUUID(),
      result: job.result,
      scopeId: randomUUID(),
      planType: 'Build',
      planId: job.planId,
      jobId: job.jobId,
      demands: job.demands,
      matchedAgents: matchedAgents(job).map(agentReference),
      definition: { _links: {}, id: 1, name: job.definitionName },
      owner: { _links: {}, id: job.requestId, name: `${job.definitionName} #${job.requestId}` },
      data: { ParallelismTag: 'Private', IsScheduledKey: 'False' },
      poolId: job.poolId,
      orchestrationId: `${job.planId}.job.__default`,
      priority: 0,
    };
    for (const field of ['assignTime', 'receiveTime', 'finishTime'] as const) if (job[field]) json[field] = job[field];
    const reserved = job.reservedAgentId === undefined ? undefined : agents.get(job.reservedAgentId);
    if (reserved) json.reservedAgent = agentReference(reserved);
    return json;
  }

  const poolsPath = new RegExp(`^/${organization}/_apis/distributedtask/pools$`);
  const jobRequestsPath = new RegExp(`^/${organization}/_apis/distributedtask/pools/(\\d+)/jobrequests$`);
  const agentsPath = new RegExp(`^/${organization}/_apis/distributedtask/pools/(\\d+)/agents(?:/(\\d+))?$`);

  const server = await startServer(async (req, res) => {
    const url = requestUrl(req);
    const method = req.method ?? 'GET';
    const record: AgentApiRequest = { method, path: url.pathname, query: url.search, auth: authenticate(req), status: 0 };
    requests.push(record);
    const body = await readBody(req);
    const answer = (status: number, payload?: unknown): void => {
      record.status = status;
      if (payload === undefined) {
        res.writeHead(status);
        res.end();
      } else {
        sendJson(res, status, payload);
      }
    };
    const list = (items: unknown[]): void => answer(200, { count: items.length, value: items });

    // Azure DevOps answers 401 before it routes anything when the credential is missing or wrong.
    if (record.auth === 'none') return answer(401, devOpsError('TF400813: The user is not authorized to access this resource.', 'UnauthorizedRequestException'));
    // Reads take the latest version when none is named; writes must name one.
    if (method !== 'GET' && !url.searchParams.get('api-version')) {
      return answer(400, devOpsError(`No api-version was supplied for the ${method} request.`, 'VssVersionNotSpecifiedException'));
    }

    if (poolsPath.test(url.pathname) && method === 'GET') {
      const name = url.searchParams.get('poolName');
      const found = [...pools.values()].filter((pool) => name === null || pool.name.toLowerCase() === name.toLowerCase());
      return list(found.map((pool) => ({ id: pool.id, name: pool.name, isHosted: false, poolType: 'automation', size: poolAgents(pool.id).length, autoProvision: false })));
    }

    const jobRequestsMatch = jobRequestsPath.exec(url.pathname);
    if (jobRequestsMatch && method === 'GET') {
      const poolId = Number(jobRequestsMatch[1]);
      if (!pools.has(poolId)) return answer(404, devOpsError(`Agent pool ${poolId} could not be found.`, 'TaskAgentPoolNotFoundException'));
      let found = [...jobs.values()].filter((job) => job.poolId === poolId).sort((a, b) => b.requestId - a.requestId);
      if (url.searchParams.get('completedRequestCount') === '0') found = found.filter((job) => job.result === null);
      const top = url.searchParams.get('$top');
      if (top !== null) found = found.slice(0, Number(top));
      return list(found.map(jobJson));
    }

    const agentsMatch = agentsPath.exec(url.pathname);
    if (agentsMatch) {
      const poolId = Number(agentsMatch[1]);
      const agentId = agentsMatch[2] === undefined ? undefined : Number(agentsMatch[2]);
      if (!pools.has(poolId)) return answer(404, devOpsError(`Agent pool ${poolId} could not be found.`, 'TaskAgentPoolNotFoundException'));
      const agent = agentId === undefined ? undefined : agents.get(agentId);
      if (agentId !== undefined && (!agent || agent.poolId !== poolId)) {
        return answer(404, devOpsError(`No agent with ID ${agentId} exists in pool ${poolId}.`, 'TaskAgentNotFoundException'));
      }
      if (method === 'GET' && !agent) {
        const name = url.searchParams.get('agentName');
        return list(poolAgents(poolId).filter((candidate) => name === null || candidate.name.toLowerCase() === name.toLowerCase()).map((candidate) => agentJson(candidate, url)));
      }
      if (method === 'GET' && agent) return answer(200, agentJson(agent, url));
      if (method === 'DELETE' && agent) {
        if (agent.assignedRequestId !== undefined) {
          return answer(400, devOpsError(`The agent ${agent.name} is running job ${agent.assignedRequestId} and cannot be deleted.`, 'TaskAgentJobStillRunningException'));
        }
        agents.delete(agent.id);
        return answer(204);
      }
      if (method === 'POST' || method === 'PUT') {
        const sent = JSON.parse(body) as { name?: string; version?: string; enabled?: boolean; systemCapabilities?: Record<string, string>; userCapabilities?: Record<string, string> };
        if (!sent.name) return answer(400, devOpsError('The agent name is required.', 'ArgumentNullException'));
        const sameName = poolAgents(poolId).find((candidate) => candidate.name.toLowerCase() === sent.name?.toLowerCase());
        if (method === 'POST' && sameName) return answer(409, devOpsError(`An agent named ${sent.name} already exists in pool ${poolId}.`, 'TaskAgentExistsException'));
        const now = timestamp();
        const saved: AgentRecord = {
          id: agent?.id ?? nextAgentId++,
          poolId,
          name: sent.name,
          version: sent.version ?? '0.0.0',
          enabled: sent.enabled ?? true,
          // A registration is offline until its listener connects.
          status: agent?.status ?? 'offline',
          createdOn: agent?.createdOn ?? now,
          statusChangedOn: agent?.statusChangedOn ?? now,
          systemCapabilities: sent.systemCapabilities ?? {},
          userCapabilities: sent.userCapabilities ?? agent?.userCapabilities ?? {},
        };
        agents.set(saved.id, saved);
        return answer(200, agentJson(saved, new URL('http://x/?includeCapabilities=true')));
      }
    }
    return answer(404, devOpsError(`No route for ${method} ${url.pathname}`, 'RouteNotFoundException'));
  }, tls);

  const standIn: AgentPoolsStandIn = {
    organizationUrl: `${server.url}/${organization}`,
    addPool(name) {
      const pool = { id: nextPoolId++, name };
      pools.set(pool.id, pool);
      return pool;
    },
    addPersonalAccessToken(token) {
      personalAccessTokens.add(token);
    },
    addAgent(poolName, seed) {
      const now = timestamp();
      const agent: AgentRecord = {
        version: '4.264.2',
        enabled: true,
        status: 'offline',
        createdOn: now,
        statusChangedOn: now,
        systemCapabilities: {},
        userCapabilities: {},
        ...seed,
        id: nextAgentId++,
        poolId: requirePool(poolName).id,
      };
      agents.set(agent.id, agent);
      return agent;
    },
    agents: (poolName) => poolAgents(requirePool(poolName).id),
    queueJob(poolName, demands, definitionName = 'pipeline') {
      const job: JobRequestRecord = {
        requestId: nextRequestId++,
        poolId: requirePool(poolName).id,
        demands,
        queueTime: timestamp(),
        result: null,
        planId: randomUUID(),
        jobId: randomUUID(),
        definitionName,
      };
      jobs.set(job.requestId, job);
      if (matchedAgents(job).length === 0) {
        job.result = 'failed';
        job.finishTime = job.queueTime;
      }
      return job;
    },
    receiveJob(requestId, agentName) {
      const job = jobs.get(requestId);
      const agent = job && poolAgents(job.poolId).find((candidate) => candidate.name === agentName);
      if (!job || !agent) throw new Error(`no job ${requestId} or agent ${agentName}`);
      job.assignTime = job.receiveTime = timestamp();
      job.reservedAgentId = agent.id;
      agent.assignedRequestId = requestId;
    },
    finishJob(requestId, result = 'succeeded') {
      const job = jobs.get(requestId);
      if (!job) throw new Error(`no job ${requestId}`);
      job.result = result;
      job.finishTime = timestamp();
      for (const agent of agents.values()) if (agent.assignedRequestId === requestId) delete agent.assignedRequestId;
    },
    jobRequests: (poolName) => [...jobs.values()].filter((job) => job.poolId === requirePool(poolName).id),
    matchedAgents,
    requests,
    stop: () => server.stop(),
  };
  return standIn;
}
