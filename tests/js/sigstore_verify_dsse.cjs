// An independent check of a Sigstore bundle holding a DSSE envelope, with sigstore-js (@sigstore/verify).
// Usage: node sigstore_verify_dsse.cjs BUNDLE TRUSTED_ROOT [PUBLIC_KEY_SPKI_DER_BASE64]
// Prints {"ok":true,"payloadType":…,"payload":<base64>} or {"ok":false,"error":…}; exit 0 / 1.
'use strict';
const fs = require('fs');
const path = require('path');
const modules = process.env.SIGSTORE_JS_MODULES;
const load = (name) => require(path.join(modules, name));
const { Verifier, toSignedEntity, toTrustMaterial } = load('@sigstore/verify');
const { bundleFromJSON } = load('@sigstore/bundle');
const { TrustedRoot, PublicKey } = load('@sigstore/protobuf-specs');

const [bundlePath, rootPath, keyDer] = process.argv.slice(2);
try {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath, 'utf8')));
  let keys;
  if (keyDer) {
    const hint = bundle.verificationMaterial.content.publicKey.hint;
    keys = { [hint]: PublicKey.fromJSON({ rawBytes: keyDer, keyDetails: 'PKIX_ECDSA_P256_SHA_256',
                                          validFor: { start: '2000-01-01T00:00:00Z' } }) };
  }
  const verifier = new Verifier(toTrustMaterial(root, keys), { ctlogThreshold: 0, tlogThreshold: 1, timestampThreshold: 1 });
  verifier.verify(toSignedEntity(bundle));
  const envelope = bundle.content.dsseEnvelope;
  console.log(JSON.stringify({ ok: true, payloadType: envelope.payloadType,
                               payload: Buffer.from(envelope.payload).toString('base64') }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error && error.message || error) }));
  process.exit(1);
}
