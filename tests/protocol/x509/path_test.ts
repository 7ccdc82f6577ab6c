import assert from "node:assert/strict";
import { CertificateError } from "../../../protocol/x509/identity.ts";
import type { CertificateAlert } from "../../../protocol/x509/identity.ts";
import {
  createTrustStore,
  DEFAULT_SIGNATURE_COST,
  MAX_SEARCH_STEPS,
  validatePath,
  verifyCost,
} from "../../../protocol/x509/path.ts";
import { parseCertificate } from "../../../protocol/x509/certificate.ts";
import type { CryptoProvider } from "../../../protocol/crypto/provider.ts";
import { fakeRsaKey } from "../../_support/hostile.ts";
import type { PathOptions } from "../../../protocol/x509/path.ts";
import { nameToString } from "../../../protocol/x509/name.ts";
import { issue, key, NOW, provider, root } from "./_fixtures.ts";
import type { Issued } from "./_fixtures.ts";

const DAY = 86400_000;
const opts: PathOptions = { now: NOW, provider, requiredEku: "clientAuth" };

const ca = root("CN=Root,O=Example,C=DE");
const inter = issue("CN=Intermediate,O=Example,C=DE", ca, { key: key("P-256", 2), isCa: true });
const leafSpec = {
  key: key("P-256", 3),
  sanEmail: ["alice@example.org"],
  extKeyUsage: ["clientAuth"],
};
const leaf = issue("CN=alice,O=Example,C=DE", inter, leafSpec);

function ok(l: Issued, inters: Issued[], anchors: Issued[], o: Partial<PathOptions> = {}) {
  return validatePath(l.der, inters.map((c) => c.der), anchors.map((c) => c.der), {
    ...opts,
    ...o,
  });
}

function fails(
  alert: CertificateAlert,
  message: RegExp,
  l: Issued,
  inters: Issued[],
  anchors: Issued[] = [ca],
  o: Partial<PathOptions> = {},
): CertificateError {
  try {
    ok(l, inters, anchors, o);
  } catch (e) {
    assert.ok(e instanceof CertificateError, String(e));
    assert.equal(e.alert, alert, e.message);
    assert.match(e.message, message);
    return e;
  }
  assert.fail("validation unexpectedly succeeded");
}

Deno.test("validatePath() accepts a root, intermediate and leaf chain", () => {
  const p = ok(leaf, [inter], [ca]);
  assert.deepEqual(p.certificates.map((c) => nameToString(c.subject)), [
    "CN=alice,O=Example,C=DE",
    "CN=Intermediate,O=Example,C=DE",
    "CN=Root,O=Example,C=DE",
  ]);
});

Deno.test("validatePath() builds paths from out-of-order chains with extra certificates", () => {
  const inter2 = issue("CN=Inter 2", inter, { key: key("P-256", 4), isCa: true });
  const l = issue("CN=bob", inter2, leafSpec);
  const stray = issue("CN=Stray", root("CN=Other Root", key("P-256", 5)), { isCa: true });
  assert.equal(ok(l, [stray, inter, inter2], [ca]).certificates.length, 4);
});

Deno.test("validatePath() backtracks over two candidate issuers where only one verifies", () => {
  const impostor = issue("CN=Intermediate,O=Example,C=DE", ca, {
    key: key("P-256", 6),
    isCa: true,
  });
  assert.equal(ok(leaf, [impostor, inter], [ca]).certificates[1]!.der, inter.der);
  const fakeRoot = root("CN=Root,O=Example,C=DE", key("P-256", 7));
  assert.equal(ok(leaf, [inter], [fakeRoot, ca]).anchor.der, ca.der);
});

Deno.test("validatePath() reports certificate_expired for expired and not-yet-valid certificates", () => {
  const old = issue("CN=old", inter, {
    ...leafSpec,
    notBefore: new Date(NOW.getTime() - 10 * DAY),
    notAfter: new Date(NOW.getTime() - DAY),
  });
  const e = fails("certificate_expired", /expired/, old, [inter]);
  assert.equal(e.subject, "CN=old");
  assert.match(e.serial!, /^[0-9a-f]+$/);
  const future = issue("CN=future", inter, {
    ...leafSpec,
    notBefore: new Date(NOW.getTime() + DAY),
  });
  fails("certificate_expired", /not yet valid/, future, [inter]);
  fails("certificate_expired", /expired/, leaf, [inter], [ca], {
    now: new Date(NOW.getTime() + 60 * DAY),
  });
});

Deno.test("validatePath() reports unknown_ca when no anchor issued the chain", () => {
  fails("unknown_ca", /No path/, leaf, [inter], [root("CN=Other Root", key("P-256", 5))]);
  fails("unknown_ca", /No path/, leaf, [], [ca]);
});

Deno.test("validatePath() reports bad_certificate for a wrong signature", () => {
  const forged = issue("CN=mallory", { der: inter.der, key: key("P-256", 8) }, leafSpec);
  fails("bad_certificate", /signature does not verify/, forged, [inter]);
  const tampered = leaf.der.slice();
  tampered[tampered.length - 5]! ^= 1;
  fails("bad_certificate", /./, { der: tampered, key: leaf.key }, [inter]);
});

Deno.test("validatePath() requires basicConstraints cA on issuers", () => {
  const notCa = issue("CN=Not a CA", ca, {
    key: key("P-256", 2),
    isCa: false,
    keyUsage: ["keyCertSign"],
  });
  fails("bad_certificate", /not a CA/, issue("CN=x", notCa, leafSpec), [notCa]);
  const noBc = issue("CN=No BC", ca, {
    key: key("P-256", 2),
    omitBasicConstraints: true,
    keyUsage: ["keyCertSign"],
  });
  fails("bad_certificate", /not a CA/, issue("CN=x", noBc, leafSpec), [noBc]);
});

Deno.test("validatePath() enforces pathLenConstraint on intermediates and the anchor", () => {
  const i0 = issue("CN=I0", ca, { key: key("P-256", 2), isCa: true, pathLen: 0 });
  const i1 = issue("CN=I1", i0, { key: key("P-256", 4), isCa: true });
  fails("bad_certificate", /Path length/, issue("CN=x", i1, leafSpec), [i0, i1]);
  ok(issue("CN=x", i0, leafSpec), [i0], [ca]);
  const tight = root("CN=Tight Root", key("P-256", 1), { pathLen: 0 });
  const ti = issue("CN=TI", tight, { key: key("P-256", 2), isCa: true });
  fails("bad_certificate", /Path length/, issue("CN=x", ti, leafSpec), [ti], [tight]);
  ok(issue("CN=x", tight, leafSpec), [], [tight]);
});

Deno.test("validatePath() checks keyUsage on issuers and the leaf", () => {
  const noSign = issue("CN=NoSign", ca, {
    key: key("P-256", 2),
    isCa: true,
    keyUsage: ["cRLSign"],
  });
  fails("bad_certificate", /keyCertSign/, issue("CN=x", noSign, leafSpec), [noSign]);
  const encOnly = issue("CN=x", inter, { ...leafSpec, keyUsage: ["keyEncipherment"] });
  fails("bad_certificate", /digitalSignature/, encOnly, [inter]);
  ok(issue("CN=x", inter, { ...leafSpec, omitKeyUsage: true }), [inter], [ca]);
});

Deno.test("validatePath() checks the leaf's extended key usage", () => {
  const server = issue("CN=srv", inter, { ...leafSpec, extKeyUsage: ["serverAuth"] });
  fails("bad_certificate", /clientAuth/, server, [inter]);
  ok(server, [inter], [ca], { requiredEku: "serverAuth" });
  ok(issue("CN=any", inter, { ...leafSpec, extKeyUsage: ["anyExtendedKeyUsage"] }), [inter], [ca]);
  ok(issue("CN=none", inter, { ...leafSpec, extKeyUsage: [] }), [inter], [ca]);
  const serverOnlyCa = issue("CN=SrvCA", ca, {
    key: key("P-256", 2),
    isCa: true,
    extKeyUsage: ["serverAuth"],
  });
  fails("bad_certificate", /clientAuth/, issue("CN=x", serverOnlyCa, leafSpec), [serverOnlyCa]);
});

Deno.test("validatePath() rejects unknown critical extensions with unsupported_certificate", () => {
  const ext = [{ oid: "1.3.6.1.4.1.99999.1", critical: true, value: Uint8Array.of(5, 0) }];
  fails(
    "unsupported_certificate",
    /critical extension/,
    issue("CN=x", inter, { ...leafSpec, extraExtensions: ext }),
    [inter],
  );
  const badInter = issue("CN=Ext CA", ca, {
    key: key("P-256", 2),
    isCa: true,
    extraExtensions: ext,
  });
  fails("unsupported_certificate", /critical extension/, issue("CN=x", badInter, leafSpec), [
    badInter,
  ]);
  const nonCritical = [{ oid: "1.3.6.1.4.1.99999.1", critical: false, value: Uint8Array.of(5, 0) }];
  ok(issue("CN=x", inter, { ...leafSpec, extraExtensions: nonCritical }), [inter], [ca]);
});

Deno.test("validatePath() enforces dNSName name constraints", () => {
  const nc = issue("CN=DNS CA", ca, {
    key: key("P-256", 2),
    isCa: true,
    nameConstraints: {
      permitted: [{ dns: "example.org" }],
      excluded: [{ dns: "bad.example.org" }],
    },
  });
  ok(issue("CN=x", nc, { ...leafSpec, sanDns: ["mail.example.org"] }), [nc], [ca]);
  ok(issue("CN=x", nc, { ...leafSpec, sanDns: ["EXAMPLE.org"] }), [nc], [ca]);
  fails(
    "bad_certificate",
    /not permitted/,
    issue("CN=x", nc, { ...leafSpec, sanDns: ["evilexample.org"] }),
    [nc],
  );
  fails(
    "bad_certificate",
    /excluded/,
    issue("CN=x", nc, { ...leafSpec, sanDns: ["a.bad.example.org"] }),
    [nc],
  );
});

Deno.test("validatePath() enforces rfc822Name name constraints, subject emailAddress included", () => {
  const nc = issue("CN=Mail CA", ca, {
    key: key("P-256", 2),
    isCa: true,
    nameConstraints: {
      permitted: [{ email: "example.org" }, { email: ".example.org" }],
      excluded: [{ email: "root@example.org" }],
    },
  });
  ok(issue("CN=x", nc, { ...leafSpec, sanEmail: ["a@example.org", "b@sub.example.org"] }), [nc], [
    ca,
  ]);
  fails(
    "bad_certificate",
    /not permitted/,
    issue("CN=x", nc, { ...leafSpec, sanEmail: ["a@evil.org"] }),
    [nc],
  );
  fails(
    "bad_certificate",
    /excluded/,
    issue("CN=x", nc, { ...leafSpec, sanEmail: ["root@example.org"] }),
    [nc],
  );
  fails(
    "bad_certificate",
    /not permitted/,
    issue("emailAddress=a@evil.org,CN=x", nc, { ...leafSpec, sanEmail: [] }),
    [nc],
  );
});

Deno.test("validatePath() enforces directoryName and iPAddress name constraints", () => {
  const nc = issue("CN=Dir CA,O=Example,C=DE", ca, {
    key: key("P-256", 2),
    isCa: true,
    nameConstraints: {
      permitted: [{ directoryName: "O=Example,C=DE" }, { ip: "127.0.0.0/8" }],
      excluded: [{ directoryName: "OU=Banned,O=Example,C=DE" }],
    },
  });
  ok(issue("CN=x,OU=Staff,O=example,C=DE", nc, { ...leafSpec, sanIp: ["127.0.0.1"] }), [nc], [ca]);
  fails("bad_certificate", /not permitted/, issue("CN=x,O=Other,C=DE", nc, leafSpec), [nc]);
  fails("bad_certificate", /excluded/, issue("CN=x,OU=Banned,O=Example,C=DE", nc, leafSpec), [nc]);
  fails(
    "bad_certificate",
    /not permitted/,
    issue("CN=x,O=Example,C=DE", nc, { ...leafSpec, sanIp: ["10.0.0.1"] }),
    [nc],
  );
});

Deno.test("validatePath() refuses SHA-1 signatures and small RSA keys", () => {
  const rsaCa = root("CN=RSA Root", key("rsa2048"));
  const sha1 = issue("CN=x", rsaCa, { ...leafSpec, signatureHash: "SHA-1" });
  fails("unsupported_certificate", /Weak signature algorithm sha1WithRSAEncryption/, sha1, [], [
    rsaCa,
  ]);
  ok(issue("CN=x", rsaCa, leafSpec), [], [rsaCa]);
  const small = issue("CN=small", rsaCa, { ...leafSpec, key: key("rsa1024") });
  fails("unsupported_certificate", /1024 bits/, small, [], [rsaCa]);
  const smallCa = issue("CN=Small CA", ca, { key: key("rsa1024"), isCa: true });
  fails("unsupported_certificate", /1024 bits/, issue("CN=x", smallCa, leafSpec), [smallCa]);
});

Deno.test("validatePath() enforces maxDepth", () => {
  let parent = ca;
  const chain: Issued[] = [];
  for (let i = 0; i < 4; i++) {
    parent = issue(`CN=Level ${i}`, parent, { key: key("P-256", 10 + i), isCa: true });
    chain.push(parent);
  }
  const l = issue("CN=deep", parent, leafSpec);
  ok(l, chain, [ca], { maxDepth: 5 });
  fails("bad_certificate", /too long/, l, chain, [ca], { maxDepth: 4 });
  fails("bad_certificate", /too long/, l, chain, [ca], { maxDepth: 2 });
});

Deno.test("validatePath() terminates on issuer loops and bounds its work", () => {
  const a0 = root("CN=A", key("P-256", 20));
  const b = issue("CN=B", a0, { key: key("P-256", 21), isCa: true });
  const a = issue("CN=A", b, { key: key("P-256", 20), isCa: true });
  fails("unknown_ca", /No path/, issue("CN=x", a, leafSpec), [a, b], [ca]);
  // Many same-name issuers, none valid: the signature budget stops the search.
  const fakes = Array.from(
    { length: 30 },
    (_, i) =>
      issue("CN=Intermediate,O=Example,C=DE", ca, { key: key("P-256", 30 + (i % 3)), isCa: true }),
  );
  const forged = issue("CN=x", { der: inter.der, key: key("P-256", 8) }, leafSpec);
  fails("bad_certificate", /signature|work/, forged, fakes, [ca], { maxSignatureChecks: 10 });
});

Deno.test("validatePath() bounds the search among many valid cross-signed issuers", () => {
  // Eight CAs with one name and one key sign each other: every link verifies, so only the
  // step budget stops a factorial search (8! orderings). The work is counted as reads of the
  // intermediates' fields; bench/parse_bench.ts times it.
  const k = key("P-256", 40);
  const seed = root("CN=Loop", k);
  const loops = Array.from(
    { length: 8 },
    (_, i) => issue("CN=Loop", seed, { key: k, isCa: true, serial: BigInt(i + 1) }),
  );
  const l = issue("CN=x", seed, leafSpec);
  let reads = 0;
  const counted = loops.map((c) =>
    new Proxy(parseCertificate(c.der), {
      get(target, property, receiver) {
        reads++;
        return Reflect.get(target, property, receiver);
      },
    })
  );
  let verifications = 0;
  const counting: CryptoProvider = {
    ...provider,
    verify(...args: Parameters<CryptoProvider["verify"]>) {
      verifications++;
      return provider.verify(...args);
    },
  };
  try {
    validatePath(l.der, counted, [ca.der], { ...opts, provider: counting, maxDepth: 10 });
    assert.fail("validation unexpectedly succeeded");
  } catch (e) {
    assert.ok(e instanceof CertificateError, String(e));
    assert.equal(e.alert, "bad_certificate");
    assert.match(e.message, /too much work/);
  }
  // No candidate reaches the anchor by name, so no signature is checked; the search stops at
  // its step budget, touching each step's certificates a bounded number of times.
  assert.equal(verifications, 0);
  assert.ok(reads > MAX_SEARCH_STEPS, `${reads} reads`);
  assert.ok(reads < 8 * MAX_SEARCH_STEPS, `${reads} reads for ${MAX_SEARCH_STEPS} steps`);
});

Deno.test("validatePath() accepts RSASSA-PSS and Ed25519 signed links", () => {
  const rsaCa = root("CN=RSA PSS Root", key("rsa2048"), { rsaPadding: "pss" });
  const edInter = issue("CN=Ed Inter", rsaCa, {
    key: key("ed25519"),
    isCa: true,
    rsaPadding: "pss",
  });
  const l = issue("CN=x", edInter, { ...leafSpec, key: key("P-384") });
  const p = ok(l, [edInter], [rsaCa]);
  assert.equal(p.certificates[1]!.signatureAlgorithm.name, "RSASSA-PSS with SHA-256");
  assert.equal(p.certificates[0]!.signatureAlgorithm.name, "Ed25519");
});

Deno.test("validatePath() only throws CertificateError on mutated chains", () => {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  const store = createTrustStore([ca.der]);
  for (let i = 0; i < 300; i++) {
    const l = leaf.der.slice();
    const m = inter.der.slice();
    const target = i % 2 ? l : m;
    target[rnd() % target.length] = rnd() & 0xff;
    try {
      validatePath(l, [m], store, opts);
    } catch (e) {
      assert.ok(e instanceof CertificateError, String(e));
    }
  }
});

/** A provider that counts verifications and the estimated cost they were charged. */
function countingProvider(): CryptoProvider & { calls: number; cost: number } {
  const counted = {
    ...provider,
    calls: 0,
    cost: 0,
    verify(...args: Parameters<CryptoProvider["verify"]>): boolean {
      counted.calls++;
      counted.cost += verifyCost(args[0]);
      return provider.verify(...args);
    },
  };
  return counted;
}

Deno.test("validatePath() refuses RSA moduli outside 2048–8192 bits below a trust anchor", () => {
  const big = issue("CN=big", ca, { ...leafSpec, publicKey: fakeRsaKey(8200) });
  fails("unsupported_certificate", /8200 bits is too large/, big, []);
  const bigCa = issue("CN=Big CA", ca, { publicKey: fakeRsaKey(9000), isCa: true });
  const l = issue("CN=x", { der: bigCa.der, key: key("rsa2048") }, leafSpec);
  fails("unsupported_certificate", /9000 bits is too large/, l, [bigCa]);
});

Deno.test("validatePath() accepts a trust anchor of up to 16384 bits", () => {
  // The anchor's key is a stand-in, so the link fails on its signature, not on the key size.
  // Anchors are trusted by configuration, so a certificate issued elsewhere serves as one.
  const anchor = issue("CN=Huge Root", ca, { publicKey: fakeRsaKey(16384), isCa: true });
  const l = issue("CN=x", { der: anchor.der, key: key("rsa2048") }, leafSpec);
  fails("bad_certificate", /signature does not verify/, l, [], [anchor]);
  const tooHuge = issue("CN=Too Huge", ca, { publicKey: fakeRsaKey(16392), isCa: true });
  assert.throws(() => createTrustStore([tooHuge.der]), CertificateError);
});

Deno.test("parseCertificate() refuses RSA exponents that are even, 1 or above 2^32", () => {
  for (const e of [1n, 65538n, 2n ** 32n + 1n, 2n ** 16383n + 1n]) {
    const c = issue("CN=e", ca, { ...leafSpec, publicKey: fakeRsaKey(2048, e) });
    assert.throws(() => parseCertificate(c.der), CertificateError, `e = ${e}`);
  }
  const c = issue("CN=e", ca, { ...leafSpec, publicKey: fakeRsaKey(2048, 2n ** 32n - 1n) });
  assert.equal(parseCertificate(c.der).publicKeyInfo.key?.kind, "rsa");
});

Deno.test("validatePath() checks no signature before a candidate path reaches an anchor by name", () => {
  const signer = key("rsa2048");
  let parent: Issued = { der: root("CN=Elsewhere", key("P-256", 9)).der, key: signer };
  const chain: Issued[] = [];
  for (let i = 0; i < 6; i++) {
    const c = issue(`CN=Level ${i}`, parent, { publicKey: fakeRsaKey(8192), isCa: true });
    chain.push(c);
    parent = { der: c.der, key: signer };
  }
  const l = issue("CN=x", parent, leafSpec);
  const counted = countingProvider();
  fails("unknown_ca", /No path/, l, chain, [ca], { provider: counted });
  assert.equal(counted.calls, 0);
});

Deno.test("validatePath() charges its signature budget before each verification", () => {
  const signer = key("rsa2048");
  // Twenty same-name CAs, each properly signed by the root but with an 8192-bit stand-in key,
  // and a leaf none of them signed: every candidate costs an 8192-bit verification.
  const bigs = Array.from(
    { length: 20 },
    () => issue("CN=Big,O=Example", ca, { publicKey: fakeRsaKey(8192), isCa: true }),
  );
  const l = issue("CN=x", { der: bigs[0]!.der, key: signer }, leafSpec);
  const counted = countingProvider();
  fails("bad_certificate", /too much work|signature/, l, bigs, [ca], { provider: counted });
  assert.ok(counted.cost <= DEFAULT_SIGNATURE_COST, `spent ${counted.cost} µs`);
  assert.ok(counted.calls < 20, `${counted.calls} verifications`);
  const small = countingProvider();
  fails("bad_certificate", /too much work/, l, bigs, [ca], {
    provider: small,
    maxSignatureCost: 500,
  });
  assert.ok(small.cost <= 500, `spent ${small.cost} µs`);
});
