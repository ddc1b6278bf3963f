// What the Azure management SDKs (@azure/arm-*) need from us: a credential, an HTTP client and the
// endpoint, all taken from the service connection; and the translation of their RestErrors into
// one-line UserErrors. The wire goes through our HttpTransport, so the agent's CA and proxy settings
// apply to ARM too, and so does its retry policy: the SDK's own retry policy is turned off, so that
// each ARM request is retried by one layer. Its long-running-operation polling stays.
import type { AccessToken as SdkAccessToken, TokenCredential as SdkTokenCredential } from '@azure/core-auth';
import type { HttpClient, HttpHeaders, PipelineRequest, PipelineResponse, RawHttpHeaders } from '@azure/core-rest-pipeline';
import { AuthenticationError, HttpError, UserError } from '../errors.js';
import type { HttpRequest, HttpTransport } from '../http/transport.js';
import type { TokenCredential } from './entra.js';

/** The Azure Resource Manager an AzureRM service connection names. */
export interface ArmEndpoint {
  /** The connection's URL, e.g. `https://management.azure.com/` (sovereign clouds and Azure Stack differ). */
  url: string;
  subscriptionId: string;
  /**
   * The Entra resource ARM tokens are issued for: the connection's `activeDirectoryServiceEndpointResourceId`
   * (`https://management.core.windows.net/` in the public cloud), or the ARM origin plus `/`.
   */
  audience: string;
}

/** Options every `@azure/arm-*` client accepts (a subset of `ClientOptions` of `@azure-rest/core-client`). */
export interface ArmClientOptions {
  endpoint: string;
  credentials: { scopes: string[] };
  httpClient: HttpClient;
  retryOptions: { maxRetries: number };
  userAgentOptions: { userAgentPrefix: string };
}

/**
 * A credential and client options for `new <Arm>Client(credential, subscriptionId, options)`.
 * The token scope is the audience plus `/.default`, kept literally: for a resource id that ends in
 * `/` Entra expects the double slash (`https://management.core.windows.net//.default`).
 */
export function armClientSetup(endpoint: ArmEndpoint, credential: TokenCredential, transport: HttpTransport): { credential: SdkTokenCredential; options: ArmClientOptions } {
  const scope = `${endpoint.audience}/.default`;
  return {
    credential: {
      // The SDK asks for `<endpoint>/.default`; we always ask for the connection's own audience.
      getToken: async (): Promise<SdkAccessToken> => {
        const token = await credential.getToken(scope);
        return { token: token.token, expiresOnTimestamp: token.expiresOnMs };
      },
    },
    options: {
      // The SDK appends paths to the endpoint; a trailing slash would double up.
      endpoint: endpoint.url.replace(/\/+$/, ''),
      credentials: { scopes: [scope] },
      httpClient: new TransportHttpClient(transport),
      // Retried in the transport, which also retries what the SDK would not (a reset connection).
      retryOptions: { maxRetries: 0 },
      userAgentOptions: { userAgentPrefix: 'private-aks-acr-pipelines' },
    },
  };
}

const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** The SDK pipeline's last hop, sending through our transport. ARM speaks JSON, so bodies are strings. */
class TransportHttpClient implements HttpClient {
  constructor(private readonly transport: HttpTransport) {}

  async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    if (!METHODS.has(request.method)) throw new Error(`ARM client: HTTP method ${request.method} is not supported`);
    if (request.body !== undefined && request.body !== null && typeof request.body !== 'string') {
      throw new Error('ARM client: only string request bodies are supported');
    }
    const response = await this.transport.send({
      method: request.method as HttpRequest['method'],
      url: request.url,
      headers: request.headers.toJSON(),
      body: request.body ?? undefined,
      // The long-running-operation poller reads Location headers itself.
      followRedirects: false,
      endpoint: 'Azure Resource Manager',
    });
    return { request, status: response.status, headers: new ResponseHeaders(response.headers), bodyAsText: await response.text() };
  }
}

/** `HttpHeaders` over the transport's lower-cased header record. */
class ResponseHeaders implements HttpHeaders {
  private readonly values = new Map<string, string>();

  constructor(headers: Record<string, string | undefined>) {
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) this.values.set(name, value);
  }

  get(name: string): string | undefined {
    return this.values.get(name.toLowerCase());
  }

  has(name: string): boolean {
    return this.values.has(name.toLowerCase());
  }

  set(name: string, value: string | number | boolean): void {
    this.values.set(name.toLowerCase(), String(value));
  }

  delete(name: string): void {
    this.values.delete(name.toLowerCase());
  }

  toJSON(): RawHttpHeaders {
    return Object.fromEntries(this.values);
  }

  [Symbol.iterator](): Iterator<[string, string]> {
    return this.values.entries();
  }
}

/** The shape of the SDK's RestError that we rely on (checked by name so no SDK runtime is imported here). */
interface ArmRestError extends Error {
  statusCode?: number;
  code?: string;
}

function isArmRestError(error: unknown): error is ArmRestError {
  return error instanceof Error && error.name === 'RestError';
}

export interface ArmOperation {
  /** What was asked for, for the message: `read registry 'contoso' in resource group 'rg'`. */
  action: string;
  /** The role or permission that allows it, named in the 403 message. */
  permission: string;
}

/**
 * One UserError line for an ARM failure: 404 says what was not found, 403 names the permission
 * the connection's identity lacks, anything else carries ARM's error code. Errors that are not
 * RestErrors (our own ConnectionError, AuthenticationError) pass through unchanged.
 */
export function describeArmError(error: unknown, operation: ArmOperation): unknown {
  if (!isArmRestError(error) || error.statusCode === undefined) return error;
  const detail = `${error.code ?? `HTTP ${error.statusCode}`}: ${firstLine(error.message)}`;
  switch (error.statusCode) {
    case 404:
      return new UserError(`Cannot ${operation.action}: it does not exist (${detail}). Check the name, the resource group and the connection's subscription.`);
    case 403:
      return new AuthenticationError(`The service connection may not ${operation.action} (${detail}). Grant its identity ${operation.permission}.`);
    case 401:
      return new AuthenticationError(`Azure Resource Manager refused the connection's token (${detail}). Check the connection's tenant and cloud.`);
    default:
      return new HttpError(`Azure Resource Manager could not ${operation.action} (${detail}).`, error.statusCode);
  }
}

function firstLine(text: string): string {
  return text.split(/\r?\n/)[0].trim();
}
