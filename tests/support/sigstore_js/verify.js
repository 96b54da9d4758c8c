'use strict';
// An independent verifier for the tests: sigstore-js (@sigstore/verify + @sigstore/bundle) checks a
// Sigstore bundle against a trusted root, a certificate identity and an OIDC issuer.
//
// Usage: node verify.js --bundle FILE --trust-config FILE --identity ID --issuer URL
//                       [--digest sha256:HEX] [--artifact FILE]
// --trust-config takes a ClientTrustConfig or a bare TrustedRoot. --digest checks that a DSSE
// bundle's in-toto statement names that digest as its subject; --artifact is what a
// message-signature bundle signed. Prints one JSON object; exit 0 when verified, 1 when not.

const fs = require('fs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!key.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${key}`);
    args[key.slice(2)] = argv[i + 1];
  }
  for (const need of ['bundle', 'trust-config', 'identity', 'issuer']) {
    if (!args[need]) throw new Error(`--${need} is required`);
  }
  return args;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const config = JSON.parse(fs.readFileSync(args['trust-config'], 'utf8'));
  const root = TrustedRoot.fromJSON(config.trustedRoot || config);
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(args.bundle, 'utf8')));
  const artifact = args.artifact ? fs.readFileSync(args.artifact) : undefined;
  const verifier = new Verifier(toTrustMaterial(root), { tlogThreshold: 1, ctlogThreshold: 1 });
  const signer = verifier.verify(toSignedEntity(bundle, artifact), {
    subjectAlternativeName: args.identity,
    extensions: { issuer: args.issuer },
  });
  const identity = signer.identity || {};
  const result = {
    verified: true,
    identity: identity.subjectAlternativeName,
    issuer: identity.extensions && identity.extensions.issuer,
  };
  if (bundle.content.$case === 'dsseEnvelope') {
    const envelope = bundle.content.dsseEnvelope;
    const statement = JSON.parse(Buffer.from(envelope.payload).toString('utf8'));
    result.payloadType = envelope.payloadType;
    result.predicateType = statement.predicateType;
    if (args.digest) {
      const [alg, hex] = args.digest.split(':');
      const named = (statement.subject || []).some((s) => s.digest && s.digest[alg] === hex);
      if (!named) throw new Error(`the statement's subject does not name ${args.digest}`);
    }
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

try {
  main();
} catch (e) {
  process.stdout.write(JSON.stringify({ verified: false, error: String(e && e.message ? e.message : e) }) + '\n');
  process.exit(1);
}
