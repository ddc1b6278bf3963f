// RS256 JSON Web Tokens (RFC 7515/7519) with node:crypto: enough to issue and check the tokens that
// Entra ID, Azure DevOps, AKS and the ACR token server hand out, and nothing more.
import { createHash, createPublicKey, createSign, createVerify, generateKeyPair, randomUUID, type JsonWebKey, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface JwtHeader {
  alg: string;
  typ?: string;
  kid?: string;
  /** base64url SHA-1 thumbprint of the signing certificate's DER (what MSAL sends). */
  x5t?: string;
  'x5t#S256'?: string;
  /** base64 (not base64url) DER certificates, leaf first (RFC 7515 §4.1.6). */
  x5c?: string[];
  [name: string]: unknown;
}

export interface JwtClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  [name: string]: unknown;
}

export interface DecodedJwt {
  header: JwtHeader;
  claims: JwtClaims;
}

/** Every rejection a verifier can make, with a message a test failure can show as is. */
export class JwtError extends Error {
  override readonly name = 'JwtError';
}

export function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function signJwt(claims: JwtClaims, privateKey: KeyObject | string, header: Omit<JwtHeader, 'alg'> = {}): string {
  const signingInput = `${base64url(JSON.stringify({ typ: 'JWT', ...header, alg: 'RS256' }))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(signingInput).sign(privateKey);
  return `${signingInput}.${base64url(signature)}`;
}

/** Reads a JWT without checking anything; for looking at a token before choosing the key to verify it with. */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwtError('JWT must have three dot-separated parts');
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')) as JwtHeader;
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as JwtClaims;
    if (typeof header !== 'object' || header === null || typeof claims !== 'object' || claims === null) throw new Error('not objects');
    return { header, claims };
  } catch {
    throw new JwtError('JWT header or payload is not base64url JSON');
  }
}

export interface VerifyOptions {
  /** Allowed clock skew for exp/nbf, in seconds (default 0: tests make tokens expire on purpose). */
  clockSkewSeconds?: number;
  /** When set, `iss` must equal it. */
  issuer?: string;
  /** When set, `aud` (a string or an array) must contain it. */
  audience?: string;
}

export type PublicKeyInput = KeyObject | JsonWebKey | string;

function toPublicKey(key: PublicKeyInput): KeyObject {
  if (typeof key === 'string') return createPublicKey(key);
  if ('type' in key && (key as KeyObject).type === 'public') return key as KeyObject;
  return createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
}

/** Checks the RS256 signature, then time and the optional issuer/audience; returns the claims. */
export function verifyJwt(token: string, publicKey: PublicKeyInput, options: VerifyOptions = {}): DecodedJwt {
  const decoded = decodeJwt(token);
  // Only RS256: accepting the header's own choice is the classic "alg: none" hole.
  if (decoded.header.alg !== 'RS256') throw new JwtError(`JWT algorithm ${String(decoded.header.alg)} is not RS256`);
  const [headerPart, payloadPart, signaturePart] = token.split('.');
  const valid = createVerify('RSA-SHA256')
    .update(`${headerPart}.${payloadPart}`)
    .verify(toPublicKey(publicKey), Buffer.from(signaturePart, 'base64url'));
  if (!valid) throw new JwtError('JWT signature does not verify');
  const { claims } = decoded;
  const now = nowSeconds();
  const skew = options.clockSkewSeconds ?? 0;
  if (typeof claims.exp !== 'number') throw new JwtError('JWT has no exp claim');
  if (claims.exp + skew <= now) throw new JwtError(`JWT expired at ${new Date(claims.exp * 1000).toISOString()}`);
  if (typeof claims.nbf === 'number' && claims.nbf - skew > now) throw new JwtError('JWT is not valid yet (nbf)');
  if (options.issuer !== undefined && claims.iss !== options.issuer) throw new JwtError(`JWT issuer ${String(claims.iss)} is not ${options.issuer}`);
  if (options.audience !== undefined) {
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(options.audience)) throw new JwtError(`JWT audience ${JSON.stringify(claims.aud)} does not include ${options.audience}`);
  }
  return decoded;
}

/** RFC 7638 thumbprint of an RSA public key: a stable `kid` that needs no bookkeeping. */
function rsaThumbprint(jwk: JsonWebKey): string {
  return base64url(createHash('sha256').update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })).digest());
}

export interface RsaKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export async function generateRsaKeyPair(): Promise<RsaKeyPair> {
  return generateKeyPairAsync('rsa', { modulusLength: 2048 });
}

export interface JwtIssuer {
  issuer: string;
  kid: string;
  /**
   * Signs `claims` with `iss`, `iat`, `nbf`, `jti` and `exp` (now + 1 h) filled in unless given;
   * pass `exp` (or `lifetimeSeconds`) to make short-lived or already expired tokens.
   */
  sign(claims: JwtClaims, lifetimeSeconds?: number): string;
  /** Verifies a token this issuer signed (signature, time, `iss`). */
  verify(token: string, options?: Omit<VerifyOptions, 'issuer'>): JwtClaims;
  publicJwk: JsonWebKey;
  /** `{ keys: [publicJwk] }`, the body of a `jwks_uri`. */
  jwks: { keys: JsonWebKey[] };
}

/** `keyPair` lets a server make its key before it knows its own URL (the issuer usually contains it). */
export async function createJwtIssuer(issuerUrl: string, keyPair?: RsaKeyPair): Promise<JwtIssuer> {
  const { privateKey, publicKey } = keyPair ?? (await generateRsaKeyPair());
  const exported = publicKey.export({ format: 'jwk' });
  const kid = rsaThumbprint(exported);
  const publicJwk: JsonWebKey = { ...exported, kid, alg: 'RS256', use: 'sig' };
  return {
    issuer: issuerUrl,
    kid,
    sign(claims, lifetimeSeconds = 3600) {
      const now = nowSeconds();
      return signJwt({ iss: issuerUrl, iat: now, nbf: now, exp: now + lifetimeSeconds, jti: randomUUID(), ...claims }, privateKey, { kid });
    },
    verify: (token, options = {}) => verifyJwt(token, publicKey, { ...options, issuer: issuerUrl }).claims,
    publicJwk,
    jwks: { keys: [publicJwk] },
  };
}

/** What a stand-in remembers about each token it handed out (tests read claims; leak scans read the token). */
export interface IssuedToken {
  token: string;
  claims: JwtClaims;
}
