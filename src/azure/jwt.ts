import { createSign, randomUUID, X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';

export interface JwtClaims {
  exp?: number;
  tid?: string;
  aud?: string | string[];
  [claim: string]: unknown;
}

/** Reads the claims of a JWT without verifying it: we only need to know when our own tokens expire. */
export function decodeJwtClaims(token: string): JwtClaims | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as JwtClaims;
  } catch {
    return undefined;
  }
}

/** Expiry of a JWT in epoch milliseconds, or `fallbackMs` when the token carries none. */
export function jwtExpiryMs(token: string, fallbackMs: number): number {
  const exp = decodeJwtClaims(token)?.exp;
  return typeof exp === 'number' ? exp * 1000 : fallbackMs;
}

export interface SigningCertificate {
  certificate: X509Certificate;
  privateKey: KeyObject;
}

/**
 * Splits a PEM bundle holding one certificate and its private key, as an AzureRM service
 * connection with certificate authentication stores it.
 */
export function parseCertificateBundle(pem: string): SigningCertificate {
  const certificateBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  const keyBlock = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.exec(pem)?.[0];
  if (!certificateBlock || !keyBlock) {
    throw new Error('the certificate must be PEM holding both the certificate and its unencrypted private key');
  }
  return { certificate: new X509Certificate(certificateBlock), privateKey: createPrivateKey(keyBlock) };
}

/**
 * A client assertion (RFC 7523) signed with the certificate's key. Entra finds the certificate by
 * the SHA-1 thumbprint in `x5t`, which every cloud, Azure Stack included, still accepts.
 */
export function signClientAssertion(signer: SigningCertificate, clientId: string, audience: string, now = Date.now()): string {
  const thumbprint = Buffer.from(signer.certificate.fingerprint.replaceAll(':', ''), 'hex').toString('base64url');
  const header = { alg: 'RS256', typ: 'JWT', x5t: thumbprint };
  const issuedAt = Math.floor(now / 1000);
  const claims = { aud: audience, iss: clientId, sub: clientId, jti: randomUUID(), nbf: issuedAt, iat: issuedAt, exp: issuedAt + 600 };
  const unsigned = `${base64UrlJson(header)}.${base64UrlJson(claims)}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(signer.privateKey).toString('base64url');
  return `${unsigned}.${signature}`;
}

function base64UrlJson(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
