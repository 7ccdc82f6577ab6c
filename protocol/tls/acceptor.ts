/**
 * The server side of a connection before its version is known: holds the first bytes until the
 * ClientHello is complete, picks TLS 1.3 or TLS 1.2 from it (RFC 8446, Section 4.2.1 and
 * Appendix D.2), and replays those bytes into the chosen engine. From then on every call goes
 * straight to that engine, whose surface is the same for both versions.
 *
 * The choice: a client that offers TLS 1.3 in supported_versions gets TLS 1.3. Otherwise a
 * client that offers TLS 1.2 (in supported_versions, or as legacy_version without it) gets the
 * TLS 1.2 engine when `minVersion` is "1.2". Everything else, including a ClientHello that does
 * not parse, goes to the TLS 1.3 engine, which sends the precise alert (protocol_version,
 * decode_error, ...), exactly as before TLS 1.2 existed.
 */
import type { PrivateKey } from "../crypto/provider.ts";
import { NOTHING, type TlsEvent } from "./_connection.ts";
import { findExtension, parseBody, readSupportedVersionsClient } from "./messages/extensions.ts";
import { type ClientHello, parseClientHello } from "./messages/client_hello.ts";
import { selectCertificate, type ServerCertificate } from "./certificate_selection.ts";
import { HandshakeJoiner } from "./messages/handshake.ts";
import { RecordDeframer } from "./record_layer.ts";
import type { SignatureResult } from "./signing.ts";
import {
  type ConnectionInfo,
  type PeerVerificationResult,
  type ServerConfig,
  TlsServerConnection,
} from "./server.ts";
import { type Tls12ServerConfig, Tls12ServerConnection } from "./tls12/server12.ts";
import type { CipherSuite12Name } from "./tls12/wire12.ts";
import {
  ContentType,
  ExtensionType,
  HandshakeType,
  MAX_CLIENT_HELLO,
  MAX_PLAINTEXT,
  TLS12,
  TLS13,
} from "./wire.ts";

/** The lowest version the server accepts. */
export type MinVersion = "1.2" | "1.3";

/** Everything a server connection of either version needs. */
export interface ServerOptions extends ServerConfig {
  /** The lowest version accepted (default "1.3": TLS 1.2 is opt-in at this level). */
  minVersion?: MinVersion;
  /**
   * Several certificates chosen by server name and signature algorithms, the first being the
   * default; when given, they replace `certificateChain` and `privateKey`.
   */
  certificates?: readonly ServerCertificate[];
  /** TLS 1.2 suites in preference order (default `DEFAULT_SUITES12`). */
  cipherSuites12?: readonly CipherSuite12Name[];
  requireExtendedMasterSecret?: Tls12ServerConfig["requireExtendedMasterSecret"];
  sessionCache?: Tls12ServerConfig["sessionCache"];
}

/** The surface the socket driver uses; both engines provide it. */
export interface ServerConnection {
  readonly handshakeComplete: boolean;
  /** Application data may be sent: the handshake is complete, or half-RTT data is allowed. */
  readonly canSend: boolean;
  readonly closed: boolean;
  receive(data: Uint8Array): void;
  takeOutgoing(): Uint8Array;
  takePlaintext(): Uint8Array;
  takeEvents(): TlsEvent[];
  send(data: Uint8Array): void;
  close(): void;
  info(): ConnectionInfo;
  completePeerVerification(result: PeerVerificationResult): void;
  completeSignature(result: SignatureResult): void;
  /**
   * The application vouches for the peer (a login): TLS 1.3 sends it a vouched ticket
   * (`TlsServerConnection.vouch()`); TLS 1.2 does nothing.
   */
  vouch?(): void;
}

/**
 * Most bytes held before a ClientHello is complete: one maximal ClientHello, plus the header of
 * each plaintext record it may span (at least 2^14 bytes each), plus slack.
 */
const MAX_HELD = MAX_CLIENT_HELLO + 5 * Math.ceil(MAX_CLIENT_HELLO / MAX_PLAINTEXT) + 1024;

/** Creates the server side of one connection. */
export function acceptTls(options: ServerOptions): ServerConnection {
  return new TlsAcceptor(options);
}

class TlsAcceptor implements ServerConnection {
  readonly #options: ServerOptions;
  #engine: ServerConnection | null = null;
  /** The parsed ClientHello, once the probe has read one. */
  #hello: ClientHello | null = null;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  /** What reads the ClientHello; dropped with `#hello` once the engine takes over. */
  #probing: { readonly deframer: RecordDeframer; readonly joiner: HandshakeJoiner } | null = {
    deframer: new RecordDeframer(),
    joiner: new HandshakeJoiner(() => MAX_CLIENT_HELLO),
  };

  constructor(options: ServerOptions) {
    this.#options = options;
  }

  get handshakeComplete(): boolean {
    return this.#engine?.handshakeComplete ?? false;
  }

  get canSend(): boolean {
    return this.#engine?.canSend ?? false;
  }

  get closed(): boolean {
    return this.#engine?.closed ?? false;
  }

  receive(data: Uint8Array): void {
    if (this.#engine !== null) return this.#engine.receive(data);
    if (data.length === 0) return;
    this.#held.push(data.slice());
    this.#heldBytes += data.length;
    let version: MinVersion | null;
    try {
      this.#probing!.deframer.push(data);
      version = this.#probe();
    } catch {
      version = "1.3";
    }
    if (version === null && this.#heldBytes <= MAX_HELD) return;
    const engine = version === "1.2" ? this.#tls12() : this.#tls13();
    this.#engine = engine;
    // The parsed ClientHello and the probe's buffers would otherwise live as long as the
    // connection (and survive every young-generation collection meanwhile).
    this.#hello = null;
    this.#probing = null;
    const held = this.#held;
    this.#held = [];
    for (const chunk of held) engine.receive(chunk);
  }

  /** The version to run, or null while the ClientHello is incomplete. */
  #probe(): MinVersion | null {
    const { deframer, joiner } = this.#probing!;
    for (let record = deframer.next(); record !== null; record = deframer.next()) {
      if (record.type !== ContentType.handshake || record.fragment.length === 0) return "1.3";
      joiner.push(record.fragment);
      const msg = joiner.next();
      if (msg === null) continue;
      if (msg.type !== HandshakeType.client_hello) return "1.3";
      return this.#chooseVersion(msg.body);
    }
    return null;
  }

  #chooseVersion(body: Uint8Array): MinVersion {
    const ch = parseClientHello(body);
    this.#hello = ch;
    if ((this.#options.minVersion ?? "1.3") !== "1.2") return "1.3";
    const sv = findExtension(ch.extensions, ExtensionType.supported_versions);
    if (sv !== undefined) {
      const versions = parseBody(sv, "supported_versions", readSupportedVersionsClient);
      if (versions.includes(TLS13)) return "1.3";
      return versions.includes(TLS12) ? "1.2" : "1.3";
    }
    return ch.legacyVersion >= TLS12 ? "1.2" : "1.3";
  }

  /** The certificate for this ClientHello when several are configured. */
  #certificate(
    version: MinVersion,
  ): { certificateChain: readonly Uint8Array[]; privateKey: PrivateKey } {
    const o = this.#options;
    if (o.certificates === undefined || o.certificates.length === 0) {
      return { certificateChain: o.certificateChain, privateKey: o.privateKey };
    }
    const c = selectCertificate(o.certificates, this.#hello, version, o.cipherSuites12);
    return { certificateChain: c.chain, privateKey: c.privateKey };
  }

  #tls13(): TlsServerConnection {
    return new TlsServerConnection({ ...this.#options, ...this.#certificate("1.3") });
  }

  #tls12(): Tls12ServerConnection {
    const o = this.#options;
    return new Tls12ServerConnection({
      provider: o.provider,
      ...this.#certificate("1.2"),
      ...(o.cipherSuites12 ? { cipherSuites12: o.cipherSuites12 } : {}),
      ...(o.groups ? { groups: o.groups } : {}),
      ...(o.alpnProtocols ? { alpnProtocols: o.alpnProtocols } : {}),
      ...(o.clientAuth ? { clientAuth: o.clientAuth } : {}),
      ...(o.requireExtendedMasterSecret !== undefined
        ? { requireExtendedMasterSecret: o.requireExtendedMasterSecret }
        : {}),
      ...(o.ticketKeys ? { ticketKeys: o.ticketKeys } : {}),
      ...(o.sessionCache ? { sessionCache: o.sessionCache } : {}),
      ...(o.now ? { now: o.now } : {}),
      ...(o.deferSigning !== undefined ? { deferSigning: o.deferSigning } : {}),
      tls13Enabled: true,
    });
  }

  takeOutgoing(): Uint8Array {
    return this.#engine?.takeOutgoing() ?? NOTHING;
  }

  takePlaintext(): Uint8Array {
    return this.#engine?.takePlaintext() ?? NOTHING;
  }

  takeEvents(): TlsEvent[] {
    return this.#engine?.takeEvents() ?? [];
  }

  send(data: Uint8Array): void {
    if (this.#engine === null) {
      throw new Error("Cannot send application data before the handshake");
    }
    this.#engine.send(data);
  }

  close(): void {
    this.#engine?.close();
  }

  info(): ConnectionInfo {
    if (this.#engine !== null) return this.#engine.info();
    return {
      version: "TLSv1.3",
      cipherSuite: "",
      group: "",
      sni: null,
      alpn: null,
      helloRetry: false,
      peer: null,
    };
  }

  completePeerVerification(result: PeerVerificationResult): void {
    this.#engine?.completePeerVerification(result);
  }

  completeSignature(result: SignatureResult): void {
    this.#engine?.completeSignature(result);
  }

  vouch(): void {
    this.#engine?.vouch?.();
  }
}
