'use strict';
// A local Sigstore instance for tests and the all-local pipeline: Sigstore's own mocks of Fulcio
// (with its CT log), Rekor and a timestamp authority (@sigstore/mock) behind one HTTP server on
// 127.0.0.1.
//
// Usage: node server.js --trust-config PATH --keys PATH [--port N]
// Binds 127.0.0.1 (port 0 = a free port), writes a ClientTrustConfig JSON of its keys to PATH, then
// prints one JSON line on stdout: {"url": ..., "trustConfig": PATH}. Stops on SIGTERM/SIGINT.
// The keys (and the CA's and TSA's certificates) come from --keys when that file exists; else they are
// made and written there (mode 0600, never replaced): every instance started with the same --keys
// has the same trust root, so one trust config verifies whatever any of them signed.
//
// Three places where the mock and sigstore-python disagree are bridged here:
//  1. sigstore-python sends the OIDC token as `Authorization: Bearer ...`; the mock reads it from the
//     body's credentials.oidcIdentityToken.
//  2. sigstore-python sends certificateSigningRequest base64-encoded; the mock wants the PEM text.
//  3. For a DSSE entry the mock logs the proposed entry as sent; Rekor logs a canonical body
//     (envelopeHash, payloadHash, signatures[{signature, verifier}]), which verifiers check.
//  4. sigstore-python asks the TSA with an RFC 3161 request (DER) and checks the nonce it sent; the
//     mock reads a JSON request and answers with a nonce of its own.

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const { initializeCA, initializeCTLog, fulcioHandler } = require('@sigstore/mock/dist/fulcio');
const { initializeTLog, rekorHandler } = require('@sigstore/mock/dist/rekor');
const { initializeTSA } = require('@sigstore/mock/dist/timestamp');
const rootCert = require('@sigstore/mock/dist/util/root-cert');
const asn1js = require('asn1js');
const pkijs = require('pkijs');

const MAX_BODY = 4 * 1024 * 1024;
// The log's name in its checkpoints (verifiers match it to the trusted root's log URL): the same for
// every instance, whatever its port, so one trust root verifies what any of them logged.
const LOG_ORIGIN = 'http://127.0.0.1';
const CLOCK_SKEW_S = 60;

function parseArgs(argv) {
  const args = { port: 0, trustConfig: null, keys: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') args.port = Number(argv[++i]);
    else if (argv[i] === '--trust-config') args.trustConfig = argv[++i];
    else if (argv[i] === '--keys') args.keys = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!args.trustConfig) throw new Error('--trust-config PATH is required');
  if (!args.keys) throw new Error('--keys PATH is required');
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) throw new Error('bad --port');
  return args;
}

function keyPair() {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

const KEY_NAMES = ['ca', 'ct', 'tlog', 'tsa'];

// The instance's keys and certificates: read from PATH, or made now and written there unless another
// instance wrote them first (then theirs are used). Certificates the mock makes are kept by name, so
// the CA and the TSA keep theirs too.
function loadOrMakeKeys(file) {
  if (fs.existsSync(file)) return readKeys(file);
  const made = { start: new Date(Date.now() - 60 * 1000).toISOString(), keys: {}, certs: {} };
  for (const name of KEY_NAMES) made.keys[name] = keyPair().privateKey.export({ format: 'pem', type: 'pkcs8' });
  return { saved: made, pairs: pairsOf(made), pending: file };
}

function readKeys(file) {
  const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  return { saved, pairs: pairsOf(saved), pending: null };
}

function pairsOf(saved) {
  const pairs = {};
  for (const name of KEY_NAMES) {
    const privateKey = crypto.createPrivateKey(saved.keys[name]);
    pairs[name] = { privateKey, publicKey: crypto.createPublicKey(privateKey) };
  }
  return pairs;
}

// Written once, never replaced: a second instance racing the first keeps the first one's keys.
function writeKeys(file, saved) {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(saved) + '\n', { mode: 0o600 });
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if (e.code !== 'EEXIST') throw e;
    return false;
  } finally {
    fs.unlinkSync(tmp);
  }
}

// The mock makes its root and intermediate certificates with these two functions: return the saved
// ones (by kind and subject), and save what it makes.
function keepCertificates(certs) {
  for (const fn of ['createRootCertificate', 'createIntermediateCertificate']) {
    const original = rootCert[fn];
    rootCert[fn] = async (...args) => {
      const key = `${fn}:${args[0]}`;
      const keyPair = fn === 'createRootCertificate' ? args[1] : args[2];
      if (certs[key]) {
        const der = Buffer.from(certs[key], 'base64');
        return { cert: { rawData: der.buffer.slice(der.byteOffset, der.byteOffset + der.length) }, keyPair };
      }
      const made = await original(...args);
      certs[key] = Buffer.from(made.cert.rawData).toString('base64');
      return made;
    };
  }
}

// An RFC 3161 request (DER) answered by the mock TSA, with the request's own nonce.
async function timestamp(tsa, raw) {
  const request = pkijs.TimeStampReq.fromBER(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  const imprint = request.messageImprint;
  const nonce = request.nonce ? new asn1js.Integer({ valueHex: request.nonce.valueBlock.valueHexView }) : null;
  const tstInfo = tsa.tstInfo.bind(tsa);
  const answering = Object.create(tsa);
  answering.tstInfo = (req) => {
    const info = tstInfo(req);
    // whole seconds: sigstore-js reads a GeneralizedTime without a fraction only
    info.genTime = new Date(Math.floor(Date.now() / 1000) * 1000);
    if (nonce) info.nonce = nonce;
    else delete info.nonce;
    return info;
  };
  const response = await tsa.timestamp.call(answering, {
    artifactHash: Buffer.from(imprint.hashedMessage.valueBlock.valueHexView),
    hashAlgorithmOID: imprint.hashAlgorithm.algorithmId,
    nonce: 0,
    policyOID: request.reqPolicy || '1.3.6.1.4.1.57264.2',
    certReq: Boolean(request.certReq),
  });
  return { statusCode: 200, response, contentType: 'application/timestamp-reply' };
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

async function initialize(keys) {
  const ctlog = await initializeCTLog(keys.pairs.ct);
  const ca = await initializeCA(keys.pairs.ca, ctlog);
  const tsa = await initializeTSA(keys.pairs.tsa);
  return {
    ca,
    tsa,
    fulcioBySub: fulcioHandler(ca, { subjectClaim: 'sub' }),
    fulcioByEmail: fulcioHandler(ca, { subjectClaim: 'email' }),
    rekor: rekorHandler(await initializeTLog(LOG_ORIGIN, keys.pairs.tlog)),
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let keys = loadOrMakeKeys(args.keys);
  keepCertificates(keys.saved.certs);

  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;

  let made = await initialize(keys);
  if (keys.pending && !writeKeys(keys.pending, keys.saved)) {
    keys = readKeys(args.keys); // another instance wrote them first: use theirs
    keepCertificates(keys.saved.certs);
    made = await initialize(keys);
  }
  const { ca, tsa, fulcioBySub, fulcioByEmail, rekor } = made;
  const { ct: ctPair, tlog: tlogPair } = keys.pairs;
  const start = new Date(keys.saved.start);

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
        else if (req.method === 'POST' && req.url === '/api/v1/timestamp') result = await timestamp(tsa, Buffer.concat(chunks));
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
    tlogs: [{ baseUrl: LOG_ORIGIN, hashAlgorithm: 'SHA2_256', publicKey: tlogKey(tlogPair), logId: { keyId: sha256(spkiDer(tlogPair)).toString('base64') } }],
    certificateAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
      uri: url,
      certChain: { certificates: [{ rawBytes: ca.rootCertificate.toString('base64') }] },
      validFor,
    }],
    ctlogs: [{ baseUrl: url, hashAlgorithm: 'SHA2_256', publicKey: tlogKey(ctPair), logId: { keyId: sha256(spkiDer(ctPair)).toString('base64') } }],
    timestampAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'tsa' },
      uri: `${url}/api/v1/timestamp`,
      certChain: { certificates: [tsa.intCertificate, tsa.rootCertificate].map((c) => ({ rawBytes: Buffer.from(c).toString('base64') })) },
      validFor,
    }],
  };
  const service = { url, majorApiVersion: 1, validFor, operator: 'kaniko-pipeline-local' };
  const signingConfig = {
    mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
    caUrls: [service],
    oidcUrls: [],
    rekorTlogUrls: [service],
    rekorTlogConfig: { selector: 'ANY' },
    tsaUrls: [{ ...service, url: `${url}/api/v1/timestamp` }],
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
