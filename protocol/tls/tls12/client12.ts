/**
 * A TLS 1.2 client (RFC 5246, Section 7.3) built from the same codecs, PRF and record layer as
 * the TLS 1.2 server. It exists to test the server: it can leave out or alter extensions, send
 * signalling suites, tamper with, drop or reorder its own messages, resume a session and try to
 * renegotiate; untampered it is a correct ECDHE client.
 */
import type {
  CryptoProvider,
  KeyExchangeGroup,
  KeyShare,
  PrivateKey,
  PublicKey,
} from "../../crypto/provider.ts";
import { constantTimeEqual } from "../../crypto/provider.ts";
import { TlsAlert } from "../alert.ts";
import { ascii, bytesEqual, concat, encode, Reader, type Writer } from "../codec.ts";
import { writeCertificateVerify } from "../messages/certificate_verify.ts";
import { type ClientHello, writeClientHello } from "../messages/client_hello.ts";
import {
  type Extension,
  findExtension,
  writeAlpn,
  writeServerName,
  writeU16List,
} from "../messages/extensions.ts";
import { type HandshakeMessage, writeHandshake } from "../messages/handshake.ts";
import { parseServerHello, type ServerHello } from "../messages/server_hello.ts";
import type { ConnectionInfo, PeerVerificationResult } from "../server.ts";
import {
  AlertLevel,
  type AlertName,
  ContentType,
  ExtensionType,
  groupByCode,
  type HandshakeType,
  NamedGroup,
  TLS12,
} from "../wire.ts";
import { Connection12 } from "./_connection12.ts";
import { parseCertificate12, writeCertificate12 } from "./messages/certificate12.ts";
import {
  type CertificateRequest12,
  parseCertificateRequest12,
} from "./messages/certificate_request12.ts";
import { writeClientKeyExchange } from "./messages/client_key_exchange.ts";
import { parseNewSessionTicket12 } from "./messages/new_session_ticket12.ts";
import { parseServerKeyExchange, writeEcdheParams } from "./messages/server_key_exchange.ts";
import {
  extendedMasterSecret,
  finishedVerifyData12,
  keyBlock,
  masterSecret,
  VERIFY_DATA_LENGTH,
} from "./prf.ts";
import { RecordProtection12 } from "./record_protection.ts";
import {
  chooseSigningScheme12,
  signingAlgorithm12,
  VERIFY_SCHEMES12,
  verifyingAlgorithm12,
} from "./signature12.ts";
import {
  type CipherSuite12Name,
  DEFAULT_SUITES12,
  ExtensionType12,
  HandshakeType12,
  Scsv,
  type Suite12,
  suite12ByCode,
  suite12ByName,
} from "./wire12.ts";

/** What a client keeps to resume a session. */
export interface ClientSession12 {
  readonly suite: number;
  readonly masterSecret: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly ticket: Uint8Array | null;
  readonly extendedMasterSecret: boolean;
}

export interface Client12Config {
  provider: CryptoProvider;
  /** Checks the server's chain and returns the leaf key for ServerKeyExchange. */
  verifyServer: (chain: readonly Uint8Array[]) => PublicKey;
  cipherSuites?: readonly (CipherSuite12Name | number)[];
  groups?: readonly KeyExchangeGroup[];
  /** signature_algorithms; null leaves the extension out. */
  signatureSchemes?: readonly number[] | null;
  /** Offer extended_master_secret (default true). */
  extendedMasterSecret?: boolean;
  /** How to signal secure renegotiation (default "extension"). */
  renegotiationInfo?: "extension" | "scsv" | "none";
  /** Add TLS_FALLBACK_SCSV (RFC 7507). */
  fallbackScsv?: boolean;
  /** ec_point_formats to send (default [0]); null leaves the extension out. */
  pointFormats?: readonly number[] | null;
  /** supported_versions to send; omitted leaves the extension out. */
  supportedVersions?: readonly number[];
  legacyVersion?: number;
  serverName?: string;
  alpnProtocols?: readonly string[];
  /** Offer session tickets (an empty extension, or the session's ticket). */
  offerTicket?: boolean;
  /** A session to resume (by ticket when it has one, else by ID). */
  resume?: ClientSession12;
  certificate?: { chain: readonly Uint8Array[]; privateKey: PrivateKey };
  /** Test hook: rewrite the ClientHello before encoding. */
  editClientHello?: (ch: ClientHello) => ClientHello;
  /**
   * Test hook over each outgoing encoded handshake message after the ClientHello: return other
   * bytes, or null to drop the message (it then stays out of the transcript).
   */
  tamper?: (type: number, encoded: Uint8Array) => Uint8Array | null;
  /** Test hook: send our second flight's messages in this order of types. */
  reorder?: (types: number[]) => number[];
  /** Test hook: leave out our change_cipher_spec. */
  skipChangeCipherSpec?: boolean;
}

interface Keys {
  readonly master: Uint8Array;
  readonly read: RecordProtection12;
  readonly write: RecordProtection12;
}

type ClientState =
  | { kind: "expectServerHello"; ch: ClientHello }
  | { kind: "expectCertificate" }
  | { kind: "expectServerKeyExchange"; serverKey: PublicKey }
  | {
    kind: "expectCertificateRequestOrDone";
    params: Uint8Array;
    request: CertificateRequest12 | null;
  }
  | { kind: "expectTicketOrChangeCipherSpec"; keys: Keys }
  | { kind: "expectChangeCipherSpec"; keys: Keys }
  | { kind: "expectFinished"; keys: Keys }
  | { kind: "connected" };

export class Tls12ClientConnection extends Connection12 {
  readonly #config: Client12Config;
  #state: ClientState;
  #transcript: Uint8Array[] = [];
  #clientRandom: Uint8Array;
  #serverRandom = new Uint8Array(0);
  #suite: Suite12 | null = null;
  #group: KeyExchangeGroup | null = null;
  #share: KeyShare | null = null;
  #ems = false;
  #resumed = false;
  #sessionId = new Uint8Array(0);
  #ticket: Uint8Array | null = null;
  #master: Uint8Array | null = null;
  /** The ServerHello as received, for tests (downgrade sentinel, extensions). */
  serverHello: ServerHello | null = null;
  /** The server's handshake messages as received, for tests. */
  readonly received: HandshakeMessage[] = [];

  constructor(config: Client12Config) {
    super(config.provider);
    this.#config = config;
    this.#clientRandom = config.provider.randomBytes(32);
    const ch = this.#clientHello();
    this.#state = { kind: "expectServerHello", ch };
    this.#sendHandshake(HandshakeType12.client_hello, (w) => writeClientHello(w, ch));
    this.flush();
  }

  /** The session to resume later, once the handshake is complete. */
  session(): ClientSession12 | null {
    if (this.#master === null || this.#suite === null) return null;
    return {
      suite: this.#suite.code,
      masterSecret: this.#master,
      sessionId: this.#sessionId,
      ticket: this.#ticket,
      extendedMasterSecret: this.#ems,
    };
  }

  get resumed(): boolean {
    return this.#resumed;
  }

  info(): ConnectionInfo {
    return {
      version: "TLSv1.2",
      cipherSuite: this.#suite?.name ?? "",
      group: this.#group ?? "",
      sni: null,
      alpn: null,
      helloRetry: false,
      peer: null,
      resumed: this.#resumed,
      extendedMasterSecret: this.#ems,
    };
  }

  completePeerVerification(_result: PeerVerificationResult): void {}

  /** Sends a zero-length application_data record (RFC 5246, Section 6.2.1 allows it). */
  sendEmptyRecord(): void {
    this.writeRecord(ContentType.application_data, new Uint8Array(0));
  }

  /** Sends a warning alert (e.g. user_canceled) on the connection. */
  sendWarning(alert: AlertName): void {
    this.sendAlert(alert, AlertLevel.warning);
  }

  /** Sends a ClientHello on the established connection (a renegotiation attempt). */
  renegotiate(): void {
    const msg = writeHandshake(
      HandshakeType12.client_hello as HandshakeType,
      (w) => writeClientHello(w, this.#clientHello()),
    );
    this.queueHandshake(msg);
    this.flush();
  }

  #clientHello(): ClientHello {
    const c = this.#config;
    const suites: number[] = (c.cipherSuites ?? DEFAULT_SUITES12).map((s) =>
      typeof s === "number" ? s : suite12ByName(s).code
    );
    if (c.renegotiationInfo === "scsv") suites.push(Scsv.empty_renegotiation_info);
    if (c.fallbackScsv) suites.push(Scsv.fallback);
    const groups = c.groups ?? ["x25519", "secp256r1", "secp384r1"];
    const ext: Extension[] = [];
    if (c.serverName !== undefined) {
      ext.push({
        type: ExtensionType.server_name,
        data: encode(writeServerName, ascii(c.serverName)),
      });
    }
    ext.push({
      type: ExtensionType.supported_groups,
      data: encode(
        (w, v: number[]) => writeU16List(w, 2, v),
        groups.map((g) => NamedGroup[g].code),
      ),
    });
    const formats = c.pointFormats === undefined ? [0] : c.pointFormats;
    if (formats !== null) {
      ext.push({
        type: ExtensionType12.ec_point_formats,
        data: encode((w, f: readonly number[]) => w.vec(1, new Uint8Array(f)), formats),
      });
    }
    const schemes = c.signatureSchemes === undefined ? VERIFY_SCHEMES12 : c.signatureSchemes;
    if (schemes !== null) {
      ext.push({
        type: ExtensionType.signature_algorithms,
        data: encode((w, v: readonly number[]) => writeU16List(w, 2, v), schemes),
      });
    }
    if (c.alpnProtocols !== undefined) {
      ext.push({
        type: ExtensionType.application_layer_protocol_negotiation,
        data: encode(writeAlpn, c.alpnProtocols.map(ascii)),
      });
    }
    if (c.extendedMasterSecret ?? true) {
      ext.push({ type: ExtensionType12.extended_master_secret, data: new Uint8Array(0) });
    }
    if (c.offerTicket || c.resume?.ticket) {
      ext.push({
        type: ExtensionType12.session_ticket,
        data: c.resume?.ticket ?? new Uint8Array(0),
      });
    }
    if (c.supportedVersions !== undefined) {
      ext.push({
        type: ExtensionType.supported_versions,
        data: encode((w, v: readonly number[]) => writeU16List(w, 1, v), c.supportedVersions),
      });
    }
    if ((c.renegotiationInfo ?? "extension") === "extension") {
      ext.push({ type: ExtensionType12.renegotiation_info, data: new Uint8Array([0]) });
    }
    let sessionId: Uint8Array = new Uint8Array(0);
    if (c.resume) {
      sessionId = c.resume.ticket ? this.provider.randomBytes(32) : c.resume.sessionId;
    }
    const ch: ClientHello = {
      legacyVersion: c.legacyVersion ?? TLS12,
      random: this.#clientRandom,
      legacySessionId: sessionId,
      cipherSuites: suites,
      legacyCompressionMethods: new Uint8Array([0]),
      extensions: ext,
    };
    return c.editClientHello ? c.editClientHello(ch) : ch;
  }

  protected override onPostHandshakeMessage(msg: HandshakeMessage): void {
    throw new TlsAlert("unexpected_message", `Unexpected post-handshake message ${msg.type}`);
  }

  protected override onChangeCipherSpec(): void {
    const s = this.#state;
    if (s.kind !== "expectChangeCipherSpec" && s.kind !== "expectTicketOrChangeCipherSpec") {
      throw new TlsAlert("unexpected_message", "Unexpected change_cipher_spec");
    }
    this.changeReadCipher(s.keys.read);
    this.#state = { kind: "expectFinished", keys: s.keys };
  }

  protected override onHandshakeMessage(msg: HandshakeMessage): void {
    this.received.push(msg);
    const s = this.#state;
    switch (s.kind) {
      case "expectServerHello":
        return this.#onServerHello(s.ch, expect(msg, HandshakeType12.server_hello));
      case "expectCertificate": {
        const cert = parseCertificate12(expect(msg, HandshakeType12.certificate).body);
        this.#transcript.push(msg.encoded);
        this.#state = {
          kind: "expectServerKeyExchange",
          serverKey: this.#config.verifyServer(cert.chain),
        };
        return;
      }
      case "expectServerKeyExchange":
        return this.#onServerKeyExchange(
          s.serverKey,
          expect(msg, HandshakeType12.server_key_exchange),
        );
      case "expectCertificateRequestOrDone":
        if (msg.type === HandshakeType12.certificate_request && s.request === null) {
          this.#transcript.push(msg.encoded);
          this.#state = { ...s, request: parseCertificateRequest12(msg.body) };
          return;
        }
        return this.#onServerHelloDone(s, expect(msg, HandshakeType12.server_hello_done));
      case "expectTicketOrChangeCipherSpec": {
        const t = parseNewSessionTicket12(expect(msg, HandshakeType12.new_session_ticket).body);
        this.#ticket = t.ticket.slice();
        this.#transcript.push(msg.encoded);
        this.#state = { kind: "expectChangeCipherSpec", keys: s.keys };
        return;
      }
      case "expectChangeCipherSpec":
        throw new TlsAlert("unexpected_message", "Handshake message before change_cipher_spec");
      case "expectFinished":
        return this.#onFinished(s.keys, expect(msg, HandshakeType12.finished));
      case "connected":
        throw new TlsAlert("unexpected_message", "Handshake message after Finished");
      default: {
        const never: never = s;
        throw new Error(`Unknown state ${JSON.stringify(never)}`);
      }
    }
  }

  #onServerHello(ch: ClientHello, msg: HandshakeMessage): void {
    const sh = parseServerHello(msg.body);
    this.serverHello = sh;
    this.#transcript.push(msg.encoded);
    if (sh.legacyVersion !== TLS12) throw new TlsAlert("protocol_version", "Not TLS 1.2");
    const suite = suite12ByCode(sh.cipherSuite);
    if (suite === null || !ch.cipherSuites.includes(suite.code)) {
      throw new TlsAlert("illegal_parameter", "Server chose a suite we did not offer");
    }
    this.#suite = suite;
    this.#serverRandom = sh.random.slice();
    this.#ems = findExtension(sh.extensions, ExtensionType12.extended_master_secret) !== undefined;
    this.#sessionId = sh.legacySessionIdEcho.slice();
    const resume = this.#config.resume;
    if (
      resume !== undefined && sh.legacySessionIdEcho.length > 0 &&
      bytesEqual(sh.legacySessionIdEcho, ch.legacySessionId)
    ) {
      if (resume.suite !== suite.code) throw new TlsAlert("illegal_parameter", "Suite changed");
      this.#resumed = true;
      this.#ticket = resume.ticket;
      const keys = this.#keys(resume.masterSecret);
      this.#state = { kind: "expectTicketOrChangeCipherSpec", keys };
      return;
    }
    this.#state = { kind: "expectCertificate" };
  }

  #onServerKeyExchange(serverKey: PublicKey, msg: HandshakeMessage): void {
    const ske = parseServerKeyExchange(msg.body);
    const params = encode(writeEcdheParams, ske.params);
    const algorithm = verifyingAlgorithm12(ske.scheme, serverKey);
    const signed = concat(this.#clientRandom, this.#serverRandom, params);
    if (!this.provider.verify(serverKey, algorithm, signed, ske.signature)) {
      throw new TlsAlert("decrypt_error", "ServerKeyExchange signature is invalid");
    }
    const group = groupByCode(ske.params.namedCurve);
    if (group === null) throw new TlsAlert("illegal_parameter", "Unknown group");
    this.#group = group;
    this.#share = this.provider.generateKeyShare(group);
    this.#transcript.push(msg.encoded);
    this.#state = {
      kind: "expectCertificateRequestOrDone",
      params: ske.params.point,
      request: null,
    };
  }

  #onServerHelloDone(
    s: Extract<ClientState, { kind: "expectCertificateRequestOrDone" }>,
    msg: HandshakeMessage,
  ): void {
    this.#transcript.push(msg.encoded);
    const flight: { type: number; encoded: Uint8Array }[] = [];
    const add = (type: number, body: (w: Writer) => void) =>
      flight.push({ type, encoded: writeHandshake(type as HandshakeType, body) });
    const cert = this.#config.certificate;
    if (s.request !== null) {
      add(HandshakeType12.certificate, (w) => writeCertificate12(w, { chain: cert?.chain ?? [] }));
    }
    add(
      HandshakeType12.client_key_exchange,
      (w) => writeClientKeyExchange(w, { point: this.#share!.publicKey }),
    );
    const order = this.#config.reorder?.(flight.map((m) => m.type));
    const ordered = order ? order.map((t) => flight.find((m) => m.type === t)!) : flight;
    let preMaster: Uint8Array | null = null;
    let master: Uint8Array | null = null;
    for (const m of ordered) {
      const out = this.#config.tamper ? this.#config.tamper(m.type, m.encoded) : m.encoded;
      if (out === null) continue;
      this.#transcript.push(out);
      this.queueHandshake(out);
      if (m.type === HandshakeType12.client_key_exchange) {
        try {
          preMaster = this.#share!.computeSecret(s.params);
        } catch {
          throw new TlsAlert("illegal_parameter", "Invalid server point");
        }
        master = this.#ems
          ? extendedMasterSecret(this.provider, this.#suite!.hash, preMaster, this.#hash())
          : masterSecret(
            this.provider,
            this.#suite!.hash,
            preMaster,
            this.#clientRandom,
            this.#serverRandom,
          );
      }
    }
    master ??= new Uint8Array(48);
    if (s.request !== null && cert !== undefined && cert.chain.length > 0) {
      const scheme = chooseSigningScheme12(cert.privateKey, s.request.signatureSchemes);
      if (scheme === null) throw new TlsAlert("handshake_failure", "No scheme for our key");
      const signature = this.provider.sign(
        cert.privateKey,
        signingAlgorithm12(scheme),
        concat(...this.#transcript),
      );
      const cv = writeHandshake(
        HandshakeType12.certificate_verify as HandshakeType,
        (w) => writeCertificateVerify(w, { scheme, signature }),
      );
      const out = this.#config.tamper
        ? this.#config.tamper(HandshakeType12.certificate_verify, cv)
        : cv;
      if (out !== null) {
        this.#transcript.push(out);
        this.queueHandshake(out);
      }
    }
    const keys = this.#keys(master);
    this.#sendFinished(keys);
    this.#state = { kind: "expectTicketOrChangeCipherSpec", keys };
  }

  #sendFinished(keys: Keys): void {
    if (this.#config.skipChangeCipherSpec) {
      this.flush();
    } else {
      this.changeWriteCipher(keys.write);
    }
    const verifyData = finishedVerifyData12(
      this.provider,
      this.#suite!.hash,
      keys.master,
      "client",
      this.#hash(),
    );
    const fin = writeHandshake(
      HandshakeType12.finished as HandshakeType,
      (w) => w.bytes(verifyData),
    );
    const out = this.#config.tamper ? this.#config.tamper(HandshakeType12.finished, fin) : fin;
    if (out !== null) {
      this.#transcript.push(out);
      this.queueHandshake(out);
    }
    this.flush();
  }

  #onFinished(keys: Keys, msg: HandshakeMessage): void {
    const r = new Reader(msg.body, "Finished");
    const verifyData = r.take(VERIFY_DATA_LENGTH);
    r.end();
    const expected = finishedVerifyData12(
      this.provider,
      this.#suite!.hash,
      keys.master,
      "server",
      this.#hash(),
    );
    if (!constantTimeEqual(verifyData, expected)) {
      throw new TlsAlert("decrypt_error", "Server Finished does not verify");
    }
    this.#transcript.push(msg.encoded);
    this.#master = keys.master;
    if (this.#resumed) this.#sendFinished(keys);
    this.#state = { kind: "connected" };
    this.establish();
  }

  #keys(master: Uint8Array): Keys {
    const s = this.#suite!;
    const kb = keyBlock(
      this.provider,
      s.hash,
      master,
      this.#clientRandom,
      this.#serverRandom,
      s.keyLength,
      s.fixedIvLength,
    );
    return {
      master,
      read: new RecordProtection12(this.provider, s, kb.serverKey, kb.serverIv),
      write: new RecordProtection12(this.provider, s, kb.clientKey, kb.clientIv),
    };
  }

  #hash(): Uint8Array {
    return this.provider.hash(this.#suite!.hash, concat(...this.#transcript));
  }

  #sendHandshake(type: number, body: (w: Writer) => void): void {
    const msg = writeHandshake(type as HandshakeType, body);
    this.#transcript.push(msg);
    this.queueHandshake(msg);
  }
}

function expect(msg: HandshakeMessage, type: number): HandshakeMessage {
  if (msg.type !== type) {
    throw new TlsAlert("unexpected_message", `Unexpected handshake message type ${msg.type}`);
  }
  return msg;
}
