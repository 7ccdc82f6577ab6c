/**
 * CRL parsing, signature checking and the revocation check of a path (RFC 5280, Sections 5
 * and 6.3), in memory: CRLs built here with the DER writer, plus one made by `openssl ca
 * -gencrl` to prove the parser reads what OpenSSL writes.
 */
import assert from "node:assert/strict";
import { parseCertificate } from "../../../protocol/x509/certificate.ts";
import {
  CrlError,
  CrlSet,
  decodeCrlFile,
  isCurrent,
  parseCrl,
  verifyCrl,
} from "../../../protocol/x509/crl.ts";
import { DerWriter } from "../../../protocol/x509/der.ts";
import { toPem } from "../../../protocol/x509/writer.ts";
import { issue, type Issued, key, NOW, provider, tmp } from "./_fixtures.ts";
import { opensslSync } from "../../_support/openssl_pki.ts";

const HOUR = 3600_000;
const ECDSA_SHA256 = "1.2.840.10045.4.3.2";

interface CrlSpec {
  readonly issuer: Issued;
  readonly revoked?: readonly { serial: bigint; reason?: number; extra?: ExtSpec[] }[];
  readonly thisUpdate?: Date;
  /** null omits nextUpdate. */
  readonly nextUpdate?: Date | null;
  readonly extensions?: readonly ExtSpec[];
  readonly version?: number | null;
}

interface ExtSpec {
  readonly oid: string;
  readonly critical?: boolean;
  readonly value: Uint8Array;
}

function writeExtensions(w: DerWriter, exts: readonly ExtSpec[]): void {
  w.sequence((l) => {
    for (const e of exts) {
      l.sequence((x) => {
        x.oid(e.oid);
        if (e.critical) x.boolean(true);
        x.octetString(e.value);
      });
    }
  });
}

/** Builds and signs a CRL with the issuer's P-256 key. */
function buildCrl(spec: CrlSpec): Uint8Array {
  const ca = parseCertificate(spec.issuer.der);
  const alg = new DerWriter().sequence((a) => a.oid(ECDSA_SHA256)).bytes();
  const tbs = new DerWriter().sequence((t) => {
    if (spec.version !== null) t.integer(spec.version ?? 1);
    t.raw(alg);
    t.raw(ca.subject.der);
    t.time(spec.thisUpdate ?? new Date(NOW.getTime() - HOUR));
    const next = spec.nextUpdate === undefined
      ? new Date(NOW.getTime() + 24 * HOUR)
      : spec.nextUpdate;
    if (next !== null) t.time(next);
    if (spec.revoked !== undefined && spec.revoked.length > 0) {
      t.sequence((list) => {
        for (const r of spec.revoked!) {
          list.sequence((e) => {
            e.integer(r.serial);
            e.time(new Date(NOW.getTime() - 2 * HOUR));
            const exts: ExtSpec[] = [...(r.extra ?? [])];
            if (r.reason !== undefined) {
              exts.push({ oid: "2.5.29.21", value: Uint8Array.of(0x0a, 1, r.reason) });
            }
            if (exts.length > 0) writeExtensions(e, exts);
          });
        }
      });
    }
    if (spec.extensions !== undefined) t.explicit(0, (x) => writeExtensions(x, spec.extensions!));
  }).bytes();
  const sig = provider.sign(spec.issuer.key, { kind: "ecdsa", hash: "SHA-256" }, tbs);
  return new DerWriter().sequence((c) => {
    c.raw(tbs);
    c.raw(alg);
    c.bitString(sig);
  }).bytes();
}

const crlNumber = (n: number): ExtSpec => ({
  oid: "2.5.29.20",
  value: new DerWriter().integer(n).bytes(),
});

const root = issue("CN=CRL Test CA", undefined, {
  isCa: true,
  keyUsage: ["keyCertSign", "cRLSign"],
  key: key("P-256", 1),
});
const other = issue("CN=CRL Test CA", undefined, {
  isCa: true,
  keyUsage: ["keyCertSign", "cRLSign"],
  key: key("P-256", 2),
});
const noCrlSign = issue("CN=CRL Test CA", undefined, {
  isCa: true,
  keyUsage: ["keyCertSign"],
  key: key("P-256", 3),
});
const leaf = (serial: bigint) =>
  parseCertificate(issue("CN=alice", root, { serial, extKeyUsage: ["clientAuth"] }).der);
const rootCert = parseCertificate(root.der);

Deno.test("parseCrl() reads issuer, dates, number and revoked serials with reasons", () => {
  const der = buildCrl({
    issuer: root,
    revoked: [{ serial: 0x1234n, reason: 1 }, { serial: 0x80n }],
    extensions: [crlNumber(7)],
  });
  const crl = parseCrl(der);
  assert.equal(crl.version, 2);
  assert.equal(crl.crlNumber, 7n);
  assert.equal(crl.revoked.size, 2);
  assert.equal(crl.revoked.get("1234")?.reason, "keyCompromise");
  // 0x80 is encoded 00 80; the map key drops the sign byte as Certificate.serialHex does.
  assert.equal(crl.revoked.get("80")?.reason, null);
  assert.equal(verifyCrl(crl, [rootCert], provider), rootCert);
  assert.ok(isCurrent(crl, NOW));
  assert.ok(!isCurrent(crl, new Date(NOW.getTime() + 25 * HOUR)));
});

Deno.test("verifyCrl() refuses a CRL signed by another key, tampered, or by a CA without cRLSign", () => {
  const der = buildCrl({ issuer: other, revoked: [{ serial: 5n }] });
  assert.throws(() => verifyCrl(parseCrl(der), [rootCert], provider), /does not verify/);
  const good = buildCrl({ issuer: root, revoked: [{ serial: 5n }] });
  const tampered = good.slice();
  // The last revoked serial's byte sits inside the signed TBSCertList.
  const at = tampered.indexOf(5, 40);
  tampered[at] = 6;
  assert.throws(() => verifyCrl(parseCrl(tampered), [rootCert], provider), /does not verify/);
  const byWeak = buildCrl({ issuer: noCrlSign });
  assert.throws(
    () => verifyCrl(parseCrl(byWeak), [parseCertificate(noCrlSign.der)], provider),
    /cRLSign|key usage/,
  );
  const stranger = parseCertificate(issue("CN=Someone Else", undefined, { isCa: true }).der);
  assert.throws(() => verifyCrl(parseCrl(good), [stranger], provider), /No CA named/);
});

Deno.test("parseCrl() refuses delta, indirect and scoped CRLs and unknown critical extensions", () => {
  const cases: Array<[CrlSpec, RegExp]> = [
    [{
      issuer: root,
      extensions: [{ oid: "2.5.29.27", critical: true, value: Uint8Array.of(2, 1, 1) }],
    }, /Delta/],
    [{
      issuer: root,
      extensions: [{ oid: "2.5.29.28", critical: true, value: Uint8Array.of(0x30, 0) }],
    }, /issuingDistributionPoint/],
    [
      {
        issuer: root,
        extensions: [{ oid: "1.2.3.4", critical: true, value: Uint8Array.of(5, 0) }],
      },
      /critical CRL extension/,
    ],
    [{
      issuer: root,
      revoked: [{
        serial: 1n,
        extra: [{ oid: "2.5.29.29", critical: true, value: Uint8Array.of(0x30, 0) }],
      }],
    }, /Indirect/],
    [{ issuer: root, extensions: [crlNumber(1), crlNumber(2)] }, /Duplicate/],
    [{ issuer: root, version: 2 }, /version/],
    [{ issuer: root, version: null, extensions: [crlNumber(1)] }, /version 2/],
  ];
  for (const [spec, message] of cases) {
    assert.throws(() => parseCrl(buildCrl(spec)), (e: unknown) => {
      assert.ok(e instanceof CrlError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
  // A non-critical unknown extension is ignored.
  parseCrl(
    buildCrl({ issuer: root, extensions: [{ oid: "1.2.3.4", value: Uint8Array.of(5, 0) }] }),
  );
});

Deno.test("no truncated prefix of a CRL parses, and random bytes never throw anything but CrlError", () => {
  const der = buildCrl({
    issuer: root,
    revoked: [{ serial: 1n, reason: 4 }],
    extensions: [crlNumber(3)],
  });
  for (let n = 0; n < der.length; n++) {
    assert.throws(() => parseCrl(der.subarray(0, n)), CrlError, `prefix of ${n} bytes parsed`);
  }
  const original = parseCrl(der);
  let seed = 20;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let i = 0; i < 2000; i++) {
    const mutated = der.slice();
    const flips = 1 + (i % 4);
    for (let f = 0; f < flips; f++) mutated[rand() * der.length >> 8] = rand();
    try {
      const crl = parseCrl(mutated);
      // A mutation that still parses verifies only if it left the signed bytes alone.
      let verified = false;
      try {
        verifyCrl(crl, [rootCert], provider);
        verified = true;
      } catch (e) {
        assert.ok(e instanceof CrlError, String(e));
      }
      if (verified) assert.deepEqual(crl.tbs, original.tbs, `mutation ${i} verified`);
    } catch (e) {
      assert.ok(e instanceof CrlError, `mutation ${i} threw ${e}`);
    }
  }
  for (let i = 0; i < 500; i++) {
    const noise = Uint8Array.from({ length: rand() }, rand);
    try {
      parseCrl(noise);
    } catch (e) {
      assert.ok(e instanceof CrlError, `noise ${i} threw ${e}`);
    }
  }
});

Deno.test("CrlSet.check() refuses a listed serial and applies the hard policy to stale CRLs", () => {
  const crl = parseCrl(buildCrl({ issuer: root, revoked: [{ serial: 0x42n, reason: 1 }] }));
  const set = new CrlSet([crl]);
  const revoked = set.check([leaf(0x42n)], NOW, "soft");
  assert.equal(revoked.ok, false);
  assert.equal(!revoked.ok && revoked.alert, "certificate_revoked");
  assert.deepEqual(set.check([leaf(0x43n)], NOW, "soft"), { ok: true });
  assert.deepEqual(set.check([leaf(0x43n)], NOW, "hard"), { ok: true });
  const later = new Date(NOW.getTime() + 48 * HOUR);
  // Soft: a stale CRL still revokes what it lists and lets the rest pass.
  assert.deepEqual(set.check([leaf(0x43n)], later, "soft"), { ok: true });
  assert.equal(set.check([leaf(0x42n)], later, "soft").ok, false);
  const stale = set.check([leaf(0x43n)], later, "hard");
  assert.equal(!stale.ok && stale.alert, "certificate_unknown");
  // Hard without any CRL for the issuer.
  const none = new CrlSet([]).check([leaf(0x43n)], NOW, "hard");
  assert.equal(!none.ok && none.alert, "certificate_unknown");
  // Hard with a CRL that has no nextUpdate: never current.
  const open = new CrlSet([parseCrl(buildCrl({ issuer: root, nextUpdate: null }))]);
  assert.equal(open.check([leaf(0x43n)], NOW, "hard").ok, false);
});

Deno.test("CrlSet keeps the newest CRL of an issuer by cRLNumber", () => {
  const older = parseCrl(
    buildCrl({ issuer: root, revoked: [{ serial: 9n }], extensions: [crlNumber(1)] }),
  );
  const newer = parseCrl(buildCrl({ issuer: root, extensions: [crlNumber(2)] }));
  assert.deepEqual(new CrlSet([older, newer]).check([leaf(9n)], NOW, "soft"), { ok: true });
  assert.equal(new CrlSet([newer, older]).crls[0]?.crlNumber, 2n);
});

Deno.test("decodeCrlFile() reads PEM and DER, and a CRL made by openssl ca -gencrl", () => {
  const der = buildCrl({ issuer: root, revoked: [{ serial: 3n }] });
  assert.equal(decodeCrlFile(der).length, 1);
  const pem = toPem(der).replace(/CERTIFICATE/g, "X509 CRL");
  assert.equal(decodeCrlFile(new TextEncoder().encode(pem + pem)).length, 2);
  assert.throws(() => decodeCrlFile(new TextEncoder().encode("hello")), CrlError);

  // openssl: a CA, a revoked leaf, and `openssl ca -gencrl`.
  const dir = `${tmp}/crl-openssl`;
  Deno.mkdirSync(dir, { recursive: true });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  opensslSync([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-subj",
    "/CN=OpenSSL CRL CA",
    "-days",
    "2",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], dir);
  opensslSync([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "leaf.key",
    "-out",
    "leaf.pem",
    "-subj",
    "/CN=leaf",
    "-days",
    "2",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
  ], dir);
  Deno.writeTextFileSync(`${dir}/index.txt`, "");
  Deno.writeTextFileSync(`${dir}/crlnumber`, "10\n");
  Deno.writeTextFileSync(
    `${dir}/ca.cnf`,
    `[ca]\ndefault_ca = d\n[d]\ndatabase = ${dir}/index.txt\ncrlnumber = ${dir}/crlnumber\n` +
      `certificate = ${dir}/ca.pem\nprivate_key = ${dir}/ca.key\ndefault_md = sha256\ndefault_crl_days = 1\n`,
  );
  opensslSync(
    ["ca", "-config", "ca.cnf", "-batch", "-revoke", "leaf.pem", "-crl_reason", "superseded"],
    dir,
  );
  opensslSync(["ca", "-config", "ca.cnf", "-batch", "-gencrl", "-out", "crl.pem"], dir);
  const [crl] = decodeCrlFile(Deno.readFileSync(`${dir}/crl.pem`));
  const ca = parseCertificate(pemDer(`${dir}/ca.pem`));
  const leafCert = parseCertificate(pemDer(`${dir}/leaf.pem`));
  assert.equal(verifyCrl(crl!, [ca], provider), ca);
  assert.equal(crl!.crlNumber, 0x10n);
  assert.equal(crl!.revoked.get(leafCert.serialHex)?.reason, "superseded");
  const verdict = new CrlSet([crl!]).check([leafCert], new Date(), "hard");
  assert.equal(!verdict.ok && verdict.alert, "certificate_revoked");
});

function pemDer(path: string): Uint8Array {
  const b64 = Deno.readTextFileSync(path).replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

Deno.test("CrlSet.check() covers every certificate of the path, intermediates included", () => {
  const intermediate = issue("CN=CRL Test Intermediate", root, {
    isCa: true,
    serial: 0x77n,
    keyUsage: ["keyCertSign", "cRLSign"],
    key: key("P-256", 4),
  });
  const leafUnder = parseCertificate(
    issue("CN=bob", intermediate, { serial: 0x5n, extKeyUsage: ["clientAuth"] }).der,
  );
  const path = [leafUnder, parseCertificate(intermediate.der)];
  const rootCrl = parseCrl(buildCrl({ issuer: root, revoked: [{ serial: 0x77n }] }));
  const intermediateCrl = parseCrl(buildCrl({ issuer: intermediate }));
  verifyCrl(intermediateCrl, [parseCertificate(intermediate.der)], provider);
  const revoked = new CrlSet([rootCrl, intermediateCrl]).check(path, NOW, "soft");
  assert.equal(!revoked.ok && revoked.alert, "certificate_revoked");
  assert.match(!revoked.ok ? revoked.reason : "", /Serial 77 /);
  // Hard: the intermediate's own CRL is needed for the leaf.
  const clean = parseCrl(buildCrl({ issuer: root }));
  assert.deepEqual(new CrlSet([clean, intermediateCrl]).check(path, NOW, "hard"), { ok: true });
  const missing = new CrlSet([clean]).check(path, NOW, "hard");
  assert.equal(!missing.ok && missing.alert, "certificate_unknown");
  assert.match(!missing.ok ? missing.reason : "", /Intermediate/);
});
