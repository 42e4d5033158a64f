// A second opinion on Sigstore bundles: sigstore-js (@sigstore/verify, installed by `make install` into
// .venv/node), offline, with a given trusted root.
//
//   node sigstore_js_verify.cjs '{"bundle": PATH, "trustedRoot": PATH, "artifact": PATH?, "publicKey": PEM-PATH?,
//                                "identity": SAN?, "issuer": ISS?}'
//
// Prints {"ok": true, "identity": …} or {"ok": false, "code": …, "message": …}; exits 0 either way (the
// caller asserts), 2 on a usage problem. A key-signed bundle's publicKey.hint is treated as opaque: the
// given key is returned for any hint, as cosign does with --key.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const prefix = process.env.SIGSTORE_JS_PREFIX;
const load = (name) => require(path.join(prefix, 'node_modules', name));
const { bundleFromJSON } = load('@sigstore/bundle');
const { TrustedRoot } = load('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = load('@sigstore/verify');

const args = JSON.parse(process.argv[2] || '{}');
if (!args.bundle || !args.trustedRoot) {
  console.error('usage: sigstore_js_verify.cjs JSON-ARGS');
  process.exit(2);
}
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(args.bundle, 'utf8')));
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(args.trustedRoot, 'utf8')));
  let keys;
  if (args.publicKey) {
    const publicKey = crypto.createPublicKey(fs.readFileSync(args.publicKey));
    keys = () => ({ publicKey, validFor: () => true });
  }
  const verifier = new Verifier(toTrustMaterial(root, keys), args.verifierOptions || {});
  const artifact = args.artifact ? fs.readFileSync(args.artifact) : undefined;
  const policy = {};
  if (args.identity) policy.subjectAlternativeName = args.identity;
  if (args.issuer) policy.extensions = { issuer: args.issuer };
  const signer = verifier.verify(toSignedEntity(bundle, artifact), policy);
  console.log(JSON.stringify({ ok: true, identity: signer.identity || null }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, code: error.code || error.name, message: String(error.message) }));
}
