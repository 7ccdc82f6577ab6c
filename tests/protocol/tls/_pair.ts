/** An in-memory client/server pair and fixtures for handshake tests. */
import { defaultProvider } from "../../../protocol/crypto/mod.ts";
import type {
  CryptoProvider,
  PrivateKey,
  PrivateKeyKind,
  PublicKey,
} from "../../../protocol/crypto/provider.ts";
import { type ClientConfig, TlsClientConnection } from "../../../protocol/tls/client.ts";
import { type ServerConfig, TlsServerConnection } from "../../../protocol/tls/server.ts";
import type { TlsEvent } from "../../../protocol/tls/mod.ts";
import {
  CertificateError,
  type ClientCertVerifier,
  type VerifiedPeer,
} from "../../../protocol/x509/identity.ts";

export const provider: CryptoProvider = defaultProvider;

export interface KeyFixture {
  readonly privateKey: PrivateKey;
  readonly publicKey: PublicKey;
  /** An opaque stand-in for a DER certificate: the engine never parses it. */
  readonly chain: readonly Uint8Array[];
}

const keys = new Map<PrivateKeyKind, KeyFixture>();

/** A cached key of the given kind with a fake one-element chain. */
export function keyFixture(kind: PrivateKeyKind): KeyFixture {
  let k = keys.get(kind);
  if (k === undefined) {
    const privateKey = provider.generatePrivateKey(kind);
    const leaf = new TextEncoder().encode(`certificate for a ${kind} key`);
    k = { privateKey, publicKey: provider.publicKeyOf(privateKey), chain: [leaf] };
    keys.set(kind, k);
  }
  return k;
}

/** A verifier that knows the fixtures' fake certificates by their bytes. */
export function stubVerifier(
  known: readonly KeyFixture[],
  authorityNames: readonly Uint8Array[] = [new Uint8Array([0x30, 0x00])],
): ClientCertVerifier & { calls: number } {
  const v = {
    authorityNames,
    calls: 0,
    verify(chain: readonly Uint8Array[]): VerifiedPeer {
      v.calls++;
      const leaf = chain[0]!;
      const k = known.find((f) =>
        f.chain[0]!.length === leaf.length && f.chain[0]!.every((b, i) => b === leaf[i])
      );
      if (k === undefined) throw new CertificateError("unknown_ca", "Unknown test certificate");
      return {
        identity: {
          subject: "CN=test",
          subjectAttributes: [],
          issuer: "CN=test ca",
          emails: [],
          dnsNames: [],
          serial: "01",
          fingerprintSha256: "00",
          notBefore: new Date(0),
          notAfter: new Date(0),
          der: leaf,
        },
        publicKey: k.publicKey,
        path: chain,
      };
    },
  };
  return v;
}

export interface Pair {
  client: TlsClientConnection;
  server: TlsServerConnection;
  clientEvents: TlsEvent[];
  serverEvents: TlsEvent[];
}

export function makePair(
  serverOptions: Partial<ServerConfig> = {},
  clientOptions: Partial<ClientConfig> = {},
  serverKey: KeyFixture = keyFixture("P-256"),
): Pair {
  const server = new TlsServerConnection({
    provider,
    certificateChain: serverKey.chain,
    privateKey: serverKey.privateKey,
    ...serverOptions,
  });
  const client = new TlsClientConnection({
    provider,
    verifyServer: () => serverKey.publicKey,
    ...clientOptions,
  });
  return { client, server, clientEvents: [], serverEvents: [] };
}

/** An endpoint as `run` drives it (either TLS version, client or server). */
export interface Endpoint {
  receive(b: Uint8Array): void;
  takeOutgoing(): Uint8Array;
  takeEvents(): TlsEvent[];
}

/** Any pair of endpoints with their collected events. */
export interface PairLike {
  client: Endpoint;
  server: Endpoint;
  clientEvents: TlsEvent[];
  serverEvents: TlsEvent[];
}

/**
 * Moves bytes both ways until neither side has anything to send (bounded). `edit` may rewrite
 * each flight in transit; `chunk` splits deliveries into pieces of that size.
 */
export function run(
  p: Pair | PairLike,
  opts: {
    toServer?: (bytes: Uint8Array, round: number) => Uint8Array;
    toClient?: (bytes: Uint8Array, round: number) => Uint8Array;
    chunk?: number;
  } = {},
): void {
  for (let round = 0; round < 20; round++) {
    let c = p.client.takeOutgoing();
    let s = p.server.takeOutgoing();
    if (c.length === 0 && s.length === 0) break;
    if (opts.toServer && c.length > 0) c = opts.toServer(c, round);
    if (opts.toClient && s.length > 0) s = opts.toClient(s, round);
    deliver(p.server, c, opts.chunk);
    deliver(p.client, s, opts.chunk);
    p.clientEvents.push(...p.client.takeEvents());
    p.serverEvents.push(...p.server.takeEvents());
  }
  p.clientEvents.push(...p.client.takeEvents());
  p.serverEvents.push(...p.server.takeEvents());
}

function deliver(
  to: { receive(b: Uint8Array): void },
  bytes: Uint8Array,
  chunk = Infinity,
): void {
  if (bytes.length === 0) return;
  for (let at = 0; at < bytes.length; at += chunk) to.receive(bytes.subarray(at, at + chunk));
}

/** The alert of the first fatal event, with who sent it. */
export function fatalOf(events: readonly TlsEvent[]): string | null {
  for (const e of events) {
    if (e.kind === "fatal") return `${e.alert}${e.sentByUs ? "" : " (received)"}`;
  }
  return null;
}

export function kinds(events: readonly TlsEvent[]): string[] {
  return events.map((e) => e.kind);
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
