/**
 * Client-certificate material for mutual-TLS interoperability tests, made with the `openssl`
 * CLI next to `makeOpensslPki()`: an intermediate CA under the test root with a client leaf
 * below it, and chain files in the orders real clients are told to send.
 */
import {
  type Issued,
  issueWithOpenssl,
  type KeyType,
  openssl,
  type OpensslPki,
} from "./openssl_pki.ts";

/** A client leaf issued by an intermediate CA that is itself issued by the test root. */
export interface IntermediateClient {
  readonly intermediate: Issued;
  readonly leaf: Issued;
  /** Leaf then intermediate, as a client sends a well-formed chain (RFC 8446, Section 4.4.2). */
  readonly chainPath: string;
  readonly chainPem: string;
  /** Only the extra certificates, for `openssl s_client -cert_chain`. */
  readonly extraPath: string;
  /** The root, then the intermediate: a `-cert_chain` file that makes the chain out of order. */
  readonly disorderedExtraPath: string;
  /** Leaf, root, intermediate: a certificate file that makes the chain out of order. */
  readonly disorderedChainPath: string;
  readonly disorderedChainPem: string;
}

const CA_EXTENSIONS =
  "basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n" +
  "subjectKeyIdentifier = hash\n";

function clientExtensions(name: string): string {
  return "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n" +
    `extendedKeyUsage = clientAuth\nsubjectAltName = email:${name}@example.org\n` +
    "authorityKeyIdentifier = keyid\n";
}

/** Issues a certificate under `ca`, or a self-signed one when `ca` is null. */
function issueUnder(
  dir: string,
  name: string,
  subject: string,
  extensions: string,
  ca: Issued | null,
  type: KeyType = "ec256",
): Promise<Issued> {
  return issueWithOpenssl(dir, name, type, subject, extensions, ca);
}

/** Issues an intermediate CA under `pki.ca` and a P-256 client leaf `name` under it. */
export async function makeIntermediateClient(
  pki: OpensslPki,
  name: string,
): Promise<IntermediateClient> {
  const intermediate = await issueUnder(
    pki.dir,
    "intermediate-ca",
    "/CN=Postern Test Intermediate CA",
    CA_EXTENSIONS.replace("CA:TRUE", "CA:TRUE,pathlen:0") + "authorityKeyIdentifier = keyid\n",
    pki.ca,
  );
  const leaf = await issueUnder(
    pki.dir,
    `client-${name}-via-intermediate`,
    `/CN=${name}/emailAddress=${name}@example.org`,
    clientExtensions(name),
    intermediate,
  );
  const chainPath = `${pki.dir}/client-${name}-chain.pem`;
  const chainPem = leaf.certPem + intermediate.certPem;
  await Deno.writeTextFile(chainPath, chainPem);
  const extraPath = `${pki.dir}/intermediate-only.pem`;
  await Deno.writeTextFile(extraPath, intermediate.certPem);
  const disorderedExtraPath = `${pki.dir}/root-then-intermediate.pem`;
  await Deno.writeTextFile(disorderedExtraPath, pki.ca.certPem + intermediate.certPem);
  const disorderedChainPath = `${pki.dir}/client-${name}-disordered.pem`;
  const disorderedChainPem = leaf.certPem + pki.ca.certPem + intermediate.certPem;
  await Deno.writeTextFile(disorderedChainPath, disorderedChainPem);
  return {
    intermediate,
    leaf,
    chainPath,
    chainPem,
    extraPath,
    disorderedExtraPath,
    disorderedChainPath,
    disorderedChainPem,
  };
}

/** The certificate's serial number as printed by `openssl x509 -serial`, as a BigInt. */
export async function opensslSerial(certPath: string): Promise<bigint> {
  const out = await openssl(["x509", "-in", certPath, "-noout", "-serial"]);
  const hex = out.trim().replace(/^serial=/, "");
  return BigInt(`0x${hex}`);
}

/**
 * A client certificate from a CA the server does not trust. With `sameName`, the foreign CA
 * copies the trusted root's subject, an impostor whose signatures cannot verify.
 */
export async function makeForeignClient(
  pki: OpensslPki,
  name: string,
  options: { sameName?: boolean } = {},
): Promise<Issued> {
  const tag = options.sameName ? "impostor" : "foreign";
  const ca = await issueUnder(
    pki.dir,
    `${tag}-ca`,
    options.sameName ? "/CN=Postern Test CA" : "/CN=Some Other CA/O=Elsewhere",
    CA_EXTENSIONS,
    null,
  );
  return await issueUnder(
    pki.dir,
    `client-${name}-${tag}`,
    `/CN=${name}/emailAddress=${name}@example.org`,
    clientExtensions(name),
    ca,
  );
}
