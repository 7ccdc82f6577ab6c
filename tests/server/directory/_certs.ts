/**
 * Client certificates for the directory tests, made with the `openssl` CLI (a throwaway CA and
 * leaf certificates with an email SAN), and CertificateIdentity values built by hand, so the
 * tests do not depend on the in-house X.509 parser.
 */
import { createHash } from "node:crypto";
import type { CertificateIdentity, NameAttribute } from "../../../protocol/x509/identity.ts";
import { issueWithOpenssl, openssl } from "../../_support/openssl_pki.ts";

export interface TestCertificate {
  readonly der: Uint8Array;
  readonly identity: CertificateIdentity;
}

export interface LeafSpec {
  readonly cn: string;
  readonly uid?: string;
  readonly email?: string;
}

/** A throwaway CA in a temporary directory that issues client certificates. */
export class TestCa {
  readonly dir: string;
  #serial = 1;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(): Promise<TestCa> {
    const dir = await Deno.makeTempDir({ prefix: "postern-dirtest-ca-" });
    await issueWithOpenssl(
      dir,
      "ca",
      "ec256",
      "/O=Postern tests/CN=Client CA",
      "basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n",
      null,
    );
    return new TestCa(dir);
  }

  /** Issues a leaf certificate; the identity carries `spec` as given (not parsed back). */
  async issue(spec: LeafSpec): Promise<TestCertificate> {
    const n = this.#serial++;
    const base = `${this.dir}/leaf${n}`;
    await openssl([
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${base}.key`,
      "-out",
      `${base}.csr`,
      "-subj",
      `/CN=leaf${n}`,
    ]);
    const ext = ["extendedKeyUsage=clientAuth"];
    if (spec.email !== undefined && /^[A-Za-z0-9.@_-]+$/.test(spec.email)) {
      ext.push(`subjectAltName=email:${spec.email}`);
    }
    await Deno.writeTextFile(`${base}.ext`, ext.join("\n") + "\n");
    await openssl([
      "x509",
      "-req",
      "-in",
      `${base}.csr`,
      "-CA",
      `${this.dir}/ca.pem`,
      "-CAkey",
      `${this.dir}/ca.key`,
      "-set_serial",
      String(1000 + n),
      "-days",
      "2",
      "-extfile",
      `${base}.ext`,
      "-outform",
      "DER",
      "-out",
      `${base}.der`,
    ]);
    const der = await Deno.readFile(`${base}.der`);
    return { der, identity: identityFor(der, spec, (1000 + n).toString(16)) };
  }

  async remove(): Promise<void> {
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** A CertificateIdentity for `der` with the given names. */
export function identityFor(der: Uint8Array, spec: LeafSpec, serial = "1"): CertificateIdentity {
  const attrs: NameAttribute[] = [{ type: "CN", oid: "2.5.4.3", value: spec.cn }];
  if (spec.uid !== undefined) {
    attrs.push({ type: "UID", oid: "0.9.2342.19200300.100.1.1", value: spec.uid });
  }
  attrs.push({ type: "O", oid: "2.5.4.10", value: "Example" });
  const subject = attrs.map((a) => `${a.type}=${escapeDnValue(a.value)}`).join(",");
  return {
    subject,
    subjectAttributes: attrs,
    issuer: "CN=Client CA,O=Postern tests",
    emails: spec.email === undefined ? [] : [spec.email],
    dnsNames: [],
    serial,
    fingerprintSha256: createHash("sha256").update(der).digest("hex"),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    der,
  };
}

/** The same identity with another subject DN string. */
export function withSubject(identity: CertificateIdentity, subject: string): CertificateIdentity {
  return { ...identity, subject };
}

function escapeDnValue(v: string): string {
  return v.replace(/([,+"\\<>;=])/g, "\\$1");
}
