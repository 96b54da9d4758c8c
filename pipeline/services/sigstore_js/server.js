'use strict';
// A local Sigstore instance for tests and the all-local pipeline: Sigstore's own mocks of Fulcio
// (with its CT log) and Rekor (@sigstore/mock) behind one HTTP server on 127.0.0.1.
//
// Usage: node server.js --trust-config PATH [--port N]
// Binds 127.0.0.1 (port 0 = a free port), writes a ClientTrustConfig JSON of its own keys to PATH,
// then prints one JSON line on stdout: {"url": ..., "trustConfig": PATH}. Stops on SIGTERM/SIGINT.
//
// Three places where the mock and sigstore-python disagree are bridged here:
//  1. sigstore-python sends the OIDC token as `Authorization: Bearer ...`; the mock reads it from the
//     body's credentials.oidcIdentityToken.
//  2. sigstore-python sends certificateSigningRequest base64-encoded; the mock wants the PEM text.
//  3. For a DSSE entry the mock logs the proposed entry as sent; Rekor logs a canonical body
//     (envelopeHash, payloadHash, signatures[{signature, verifier}]), which verifiers check.

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const { initializeCA, initializeCTLog, fulcioHandler } = require('@sigstore/mock/dist/fulcio');
const { initializeTLog, rekorHandler } = require('@sigstore/mock/dist/rekor');

const MAX_BODY = 4 * 1024 * 1024;
const CLOCK_SKEW_S = 60;

function parseArgs(argv) {
  const args = { port: 0, trustConfig: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') args.port = Number(argv[++i]);
    else if (argv[i] === '--trust-config') args.trustConfig = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!args.trustConfig) throw new Error('--trust-config PATH is required');
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) throw new Error('bad --port');
  return args;
}

function keyPair() {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

function spkiDer(pair) {
  return pair.publicKey.export({ format: 'der', type: 'spki' });
}

function sha256(data) {
  return crypto.createHash('sha256').update(data).digest();
}

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

// The checks Fulcio makes on the token's claims (it also checks the issuer's signature, which a
// local instance without an issuer cannot do: tokens for it are minted by the caller).
function checkToken(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('identity token is not a JWT');
  const claims = b64urlJson(parts[1]);
  const now = Math.floor(Date.now() / 1000);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes('sigstore')) throw new Error('identity token audience is not "sigstore"');
  if (typeof claims.iss !== 'string' || !claims.iss) throw new Error('identity token has no issuer');
  if (typeof claims.exp !== 'number' || claims.exp + CLOCK_SKEW_S < now) throw new Error('identity token has expired');
  if (typeof claims.nbf === 'number' && claims.nbf - CLOCK_SKEW_S > now) throw new Error('identity token is not valid yet');
  if (!claims.sub && !claims.email) throw new Error('identity token has neither sub nor email');
  return claims;
}

function pae(payloadType, payload) {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'), type,
    Buffer.from(` ${payload.length} `, 'utf8'), payload,
  ]);
}

// Rekor's canonical dsse v0.0.1 body for a proposed entry (and Rekor's own signature check).
function canonicalDsse(proposed) {
  const content = proposed.spec && proposed.spec.proposedContent;
  if (!content || typeof content.envelope !== 'string' || !Array.isArray(content.verifiers)) {
    throw new Error('dsse entry has no proposedContent.envelope and verifiers');
  }
  const envelope = JSON.parse(content.envelope);
  const payload = Buffer.from(envelope.payload, 'base64');
  const message = pae(envelope.payloadType, payload);
  const signatures = envelope.signatures.map((sig) => {
    const verifier = content.verifiers.find((v) => {
      const cert = new crypto.X509Certificate(Buffer.from(v, 'base64'));
      return crypto.verify('sha256', message, cert.publicKey, Buffer.from(sig.sig, 'base64'));
    });
    if (!verifier) throw new Error('dsse signature does not verify with any verifier');
    return { signature: sig.sig, verifier };
  });
  signatures.sort((a, b) => (a.signature < b.signature ? -1 : a.signature > b.signature ? 1 : 0));
  return {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(Buffer.from(content.envelope, 'utf8')).toString('hex') },
      payloadHash: { algorithm: 'sha256', value: sha256(payload).toString('hex') },
      signatures,
    },
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const caPair = keyPair();
  const ctPair = keyPair();
  const tlogPair = keyPair();
  const start = new Date(Date.now() - 60 * 1000);

  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;

  const ctlog = await initializeCTLog(ctPair);
  const ca = await initializeCA(caPair, ctlog);
  const fulcioBySub = fulcioHandler(ca, { subjectClaim: 'sub' });
  const fulcioByEmail = fulcioHandler(ca, { subjectClaim: 'email' });
  const tlog = await initializeTLog(url, tlogPair);
  const rekor = rekorHandler(tlog);

  async function signingCert(req, body) {
    const auth = req.headers.authorization || '';
    const json = JSON.parse(body);
    let token = json.credentials && json.credentials.oidcIdentityToken;
    if (auth.startsWith('Bearer ')) token = auth.slice('Bearer '.length).trim();
    if (!token) return { statusCode: 401, response: JSON.stringify({ message: 'no identity token' }) };
    let claims;
    try {
      claims = checkToken(token);
    } catch (e) {
      return { statusCode: 401, response: JSON.stringify({ message: e.message }) };
    }
    json.credentials = { oidcIdentityToken: token };
    const csr = json.certificateSigningRequest;
    if (typeof csr === 'string' && !csr.startsWith('-----BEGIN')) {
      json.certificateSigningRequest = Buffer.from(csr, 'base64').toString('utf8');
    }
    // As Fulcio does for e-mail issuers: a verified e-mail address is the identity, else sub.
    const byEmail = typeof claims.email === 'string' && (claims.email_verified === true || !claims.sub);
    const handler = byEmail ? fulcioByEmail : fulcioBySub;
    return handler.fn(JSON.stringify(json));
  }

  async function logEntry(body) {
    let proposed = JSON.parse(body);
    if (proposed.kind === 'dsse') proposed = canonicalDsse(proposed);
    return rekor.fn(JSON.stringify(proposed));
  }

  server.on('request', (req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let result;
      try {
        if (req.method === 'POST' && req.url === '/api/v2/signingCert') result = await signingCert(req, body);
        else if (req.method === 'POST' && req.url === '/api/v1/log/entries') result = await logEntry(body);
        else if (req.method === 'GET' && req.url === '/healthz') result = { statusCode: 200, response: 'ok' };
        else result = { statusCode: 404, response: JSON.stringify({ message: `no route ${req.method} ${req.url}` }) };
      } catch (e) {
        result = { statusCode: 400, response: JSON.stringify({ message: String(e && e.message ? e.message : e) }) };
      }
      let response = result.response;
      if (result.statusCode >= 400 && typeof response === 'string' && !response.startsWith('{')) {
        response = JSON.stringify({ message: response });
      }
      res.writeHead(result.statusCode, { 'Content-Type': result.contentType || 'application/json' });
      res.end(response);
    });
  });

  const validFor = { start: start.toISOString() };
  const tlogKey = (pair) => ({
    rawBytes: spkiDer(pair).toString('base64'),
    keyDetails: 'PKIX_ECDSA_P256_SHA_256',
    validFor,
  });
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [{ baseUrl: url, hashAlgorithm: 'SHA2_256', publicKey: tlogKey(tlogPair), logId: { keyId: sha256(spkiDer(tlogPair)).toString('base64') } }],
    certificateAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
      uri: url,
      certChain: { certificates: [{ rawBytes: ca.rootCertificate.toString('base64') }] },
      validFor,
    }],
    ctlogs: [{ baseUrl: url, hashAlgorithm: 'SHA2_256', publicKey: tlogKey(ctPair), logId: { keyId: sha256(spkiDer(ctPair)).toString('base64') } }],
    timestampAuthorities: [],
  };
  const service = { url, majorApiVersion: 1, validFor, operator: 'kaniko-pipeline-local' };
  const signingConfig = {
    mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
    caUrls: [service],
    oidcUrls: [],
    rekorTlogUrls: [service],
    rekorTlogConfig: { selector: 'ANY' },
    tsaUrls: [],
    tsaConfig: { selector: 'ANY' },
  };
  const trustConfig = {
    mediaType: 'application/vnd.dev.sigstore.clienttrustconfig.v0.1+json',
    trustedRoot,
    signingConfig,
  };
  const tmp = `${args.trustConfig}.${process.pid}.tmp`;
  fs.mkdirSync(path.dirname(path.resolve(args.trustConfig)), { recursive: true });
  fs.writeFileSync(tmp, JSON.stringify(trustConfig, null, 2) + '\n', { mode: 0o644 });
  fs.renameSync(tmp, args.trustConfig);

  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(JSON.stringify({ url, trustConfig: path.resolve(args.trustConfig) }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`local sigstore: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
