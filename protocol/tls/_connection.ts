/**
 * What the server and the test client share: the record pump, alerts, application data,
 * KeyUpdate and closure (RFC 8446, Sections 4.6.3, 5 and 6). The handshake itself is the
 * subclass's business; this class only hands it complete handshake messages.
 */
import type { CryptoProvider } from "../crypto/provider.ts";
import type { VerifiedPeer } from "../x509/identity.ts";
import { alertFromError, alertNameOf, TlsAlert } from "./alert.ts";
import { encode, lendWriter, returnWriter, type Writer } from "./codec.ts";
import {
  type KeyStage,
  nextTrafficSecret,
  trafficKeys,
  type TrafficSecret,
} from "./key_schedule.ts";
import { HandshakeJoiner, type HandshakeMessage, writeHandshake } from "./messages/handshake.ts";
import { parseKeyUpdate, writeKeyUpdate } from "./messages/key_update.ts";
import {
  type OpenedRecord,
  RecordDeframer,
  RecordProtection,
  type TlsRecord,
  writePlaintextRecord,
  writePlaintextRecordInto,
} from "./record_layer.ts";
import { RECORD_BUFFER, recordBuffer, recycleSealBuffer, sealBuffer } from "./seal_buffers.ts";
import type { SignatureRequest } from "./signing.ts";
import {
  AlertDescription,
  AlertLevel,
  type AlertName,
  ContentType,
  HandshakeType,
  MAX_HANDSHAKE_MESSAGE,
  MAX_PLAINTEXT,
  type Suite,
} from "./wire.ts";

/** What a connection reports to its driver. */
export type TlsEvent =
  | { kind: "handshakeComplete" }
  | { kind: "peerVerificationRequired"; peer: VerifiedPeer }
  /** The handshake waits for a signature; answer with `completeSignature()`. */
  | { kind: "signatureRequired"; request: SignatureRequest }
  | { kind: "peerClosed" }
  | { kind: "fatal"; alert: AlertName; sentByUs: boolean; reason: string };

/** Default per-key record limit before we rotate our own keys (well under AES-GCM's bound). */
export const DEFAULT_KEY_UPDATE_AFTER_RECORDS = 2 ** 24;

/** Input we hold while the handshake waits on the driver (peer verification). */
const MAX_HELD_INPUT = 1 << 20;

/**
 * Most KeyUpdates a peer may send in a row without application data in between. Each one costs
 * us a key derivation (three HKDF expansions and a new AEAD key: in the hostile bench, KeyUpdate
 * floods were the largest share of the server's handshake-gate work at 32); a legitimate peer
 * rotates keys after a great many records, not on every one, so a longer run is a flood and
 * ends the connection with `unexpected_message`.
 */
export const MAX_KEY_UPDATES_WITHOUT_DATA = 16;

/** A traffic secret of either stage, discriminated by `stage`. */
type StagedSecret = TrafficSecret<"handshake"> | TrafficSecret<"application">;
/** A record protection of either stage; only the application one can seal data. */
type StagedProtection = RecordProtection<"handshake"> | RecordProtection<"application">;

export abstract class Connection {
  protected readonly provider: CryptoProvider;
  readonly #keyUpdateAfterRecords: number;
  readonly #deframer = new RecordDeframer();
  readonly #joiner = new HandshakeJoiner((type) => this.maxHandshakeLength(type));
  #read: StagedProtection | null = null;
  #write: StagedProtection | null = null;
  #readSecret: StagedSecret | null = null;
  #writeSecret: StagedSecret | null = null;
  #suite: Suite | null = null;
  /**
   * Handshake messages queued for the next flush, encoded straight into a writer lent while a
   * flight is being built (null between flights).
   */
  #staged: Writer | null = null;
  /** Records ready for the transport, in order; `#tail` follows the last of them. */
  #outgoing: Uint8Array[] = [];
  /**
   * The buffer that small records are written into one after another (from the record buffer
   * pool: the transport returns it once written), and how much of it they fill.
   */
  #tail: Uint8Array | null = null;
  #tailUsed = 0;
  #plaintext: Uint8Array[] = [];
  #events: TlsEvent[] = [];
  #earlyDataBudget = 0;
  #keyUpdatesWithoutData = 0;
  #owesKeyUpdate = false;
  #established = false;
  /**
   * Application data may be sent before the handshake is complete: a TLS 1.3 server whose
   * flight is sent and that waits only for the client's Finished (half-RTT data, RFC 8446,
   * Section 2).
   */
  #halfRtt = false;
  #inputClosed = false;
  #outputClosed = false;
  #failed = false;

  protected constructor(provider: CryptoProvider, keyUpdateAfterRecords?: number) {
    this.provider = provider;
    this.#keyUpdateAfterRecords = keyUpdateAfterRecords ?? DEFAULT_KEY_UPDATE_AFTER_RECORDS;
    if (!(this.#keyUpdateAfterRecords >= 1)) throw new RangeError("keyUpdateAfterRecords < 1");
  }

  // ---- Hooks for the handshake subclasses ----

  /** Handles one complete handshake message before the connection is established. */
  protected abstract onHandshakeMessage(msg: HandshakeMessage): void;
  /** Handles a post-handshake message other than KeyUpdate. */
  protected abstract onPostHandshakeMessage(msg: HandshakeMessage): void;
  /** Whether a change_cipher_spec record is tolerated now; it is consumed when true. */
  protected abstract acceptChangeCipherSpec(): boolean;
  /**
   * The largest body a handshake message of `type` may have in the current state, or -1 when
   * the type is unexpected (`unexpected_message` before its body is buffered).
   */
  protected maxHandshakeLength(_type: number): number {
    return MAX_HANDSHAKE_MESSAGE;
  }
  /** Runs after each `receive()` has processed what it could (nothing by default). */
  protected afterInput(): void {}
  /** False while the handshake waits on the driver; input is then held, not processed. */
  protected get acceptingInput(): boolean {
    return true;
  }

  // ---- Public surface ----

  /** True once application data may flow. */
  get handshakeComplete(): boolean {
    return this.#established;
  }

  /**
   * True once application data may be sent: the handshake is complete, or the server may send
   * half-RTT data (`openHalfRtt()`). Received application data still waits for `handshakeComplete`.
   */
  get canSend(): boolean {
    return this.#established || this.#halfRtt;
  }

  /** True when no more input will be accepted (peer closed, or a fatal alert). */
  get closed(): boolean {
    return this.#inputClosed;
  }

  /** True once nothing more can be sent (`close()`, or a fatal alert). */
  protected get outputClosed(): boolean {
    return this.#outputClosed;
  }

  /** Feeds received bytes. Never throws: a fatal condition queues an alert and closes. */
  receive(data: Uint8Array): void {
    if (this.#inputClosed) return;
    try {
      this.#deframer.push(data);
      this.pump();
      if (!this.#inputClosed) this.afterInput();
    } catch (e) {
      this.fail(e);
    }
  }

  /** Bytes to write to the transport (empty when none). */
  takeOutgoing(): Uint8Array {
    this.#closeTail();
    return drainBytes(this.#outgoing);
  }

  /** Decrypted application data (empty when none). */
  takePlaintext(): Uint8Array {
    return drainBytes(this.#plaintext);
  }

  takeEvents(): TlsEvent[] {
    const e = this.#events;
    this.#events = [];
    return e;
  }

  /** Sends application data, split into records of at most 2^14 bytes. */
  send(data: Uint8Array): void {
    if (!this.#established && !this.#halfRtt) {
      throw new Error("Cannot send application data before the handshake");
    }
    if (this.#outputClosed) throw new Error("Cannot send application data after close");
    try {
      if (!this.#sealAll(data)) {
        for (let at = 0; at < data.length; at += MAX_PLAINTEXT) {
          this.#writeRecord(ContentType.application_data, data.subarray(at, at + MAX_PLAINTEXT));
        }
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * Seals every record of `data` into one buffer, queued as a single write: no copy of the
   * content before sealing and none to join the records afterwards. False (nothing done) when a
   * KeyUpdate falls due within these records; `send` then takes them one at a time.
   */
  #sealAll(data: Uint8Array): boolean {
    if (this.#write === null || data.length <= MAX_PLAINTEXT) return false;
    this.#answerKeyUpdate();
    const w = this.#write;
    const records = Math.ceil(data.length / MAX_PLAINTEXT);
    if (w.sequence + records > this.#keyUpdateAfterRecords) return false;
    const full = Math.floor(data.length / MAX_PLAINTEXT);
    const rest = data.length - full * MAX_PLAINTEXT;
    const size = full * w.sealedLength(MAX_PLAINTEXT) + (rest > 0 ? w.sealedLength(rest) : 0);
    // Sealed whole below, so a reused buffer keeps none of its old bytes.
    const out = sealBuffer(size);
    this.#closeTail();
    let offset = 0;
    for (let at = 0; at < data.length; at += MAX_PLAINTEXT) {
      const content = data.subarray(at, at + MAX_PLAINTEXT);
      offset += w.sealInto(ContentType.application_data, content, out, offset);
    }
    this.#outgoing.push(out);
    return true;
  }

  /** Queues close_notify (RFC 8446, Section 6.1); no more data can be sent afterwards. */
  close(): void {
    if (this.#outputClosed) return;
    // A flight cut short (e.g. while its signature is pending) is dropped, not half sent.
    if (!this.#established) this.#dropStaged();
    try {
      this.#sendAlert("close_notify", AlertLevel.warning);
    } catch (e) {
      this.fail(e);
    }
    this.#outputClosed = true;
  }

  /** Asks the peer to update its keys and updates ours (RFC 8446, Section 4.6.3). */
  requestKeyUpdate(): void {
    if (!this.#established || this.#outputClosed) {
      throw new Error("Cannot update keys outside an established connection");
    }
    try {
      this.#updateWriteKeys(true);
    } catch (e) {
      this.fail(e);
    }
  }

  // ---- Services for the subclasses ----

  protected emit(event: TlsEvent): void {
    this.#events.push(event);
  }

  /** Records handshake messages for sending; they are framed into records at `flush()`. */
  protected queueHandshake(encoded: Uint8Array): void {
    (this.#staged ??= lendWriter()).bytes(encoded);
  }

  /**
   * Encodes the handshake message `type` (its body written by `body`) straight into the queue
   * and returns its bytes, for the transcript: a view that is only valid until the next flush.
   */
  protected queueHandshakeMessage(type: HandshakeType, body: (w: Writer) => void): Uint8Array {
    const w = this.#staged ??= lendWriter();
    const start = w.length;
    w.u8(type).lengthPrefixed(3, body);
    return w.view(start);
  }

  /** Writes queued handshake messages as records under the current write key. */
  protected flush(): void {
    const staged = this.#staged;
    if (staged === null) return;
    const all = staged.view();
    this.#staged = null;
    try {
      for (let at = 0; at < all.length; at += MAX_PLAINTEXT) {
        this.#writeRecord(ContentType.handshake, all.subarray(at, at + MAX_PLAINTEXT));
      }
    } finally {
      returnWriter(staged);
    }
  }

  #dropStaged(): void {
    if (this.#staged !== null) returnWriter(this.#staged);
    this.#staged = null;
  }

  /**
   * Room for `length` more bytes of records after those queued: in the tail buffer while they
   * fit, else in a new one (a record buffer from the pool, or a buffer of its own for a record
   * larger than that).
   */
  #room(length: number): Uint8Array {
    const tail = this.#tail;
    if (tail !== null && this.#tailUsed + length <= tail.length) return tail;
    this.#closeTail();
    const fresh = length <= RECORD_BUFFER ? recordBuffer() : new Uint8Array(length);
    this.#tail = fresh;
    return fresh;
  }

  /** Queues what the tail buffer holds (an unused one goes back to the pool). */
  #closeTail(): void {
    const tail = this.#tail;
    if (tail === null) return;
    if (this.#tailUsed > 0) this.#outgoing.push(tail.subarray(0, this.#tailUsed));
    else recycleSealBuffer(tail);
    this.#tail = null;
    this.#tailUsed = 0;
  }

  /**
   * Writes one record of any content type under the current write key, with `padding` zero
   * bytes of TLSInnerPlaintext padding (RFC 8446, Section 5.4). For test clients that probe
   * the peer with records the protocol itself never produces (empty alerts, padding).
   */
  protected writeRawRecord(type: ContentType, content: Uint8Array, padding = 0): void {
    this.flush();
    const w = this.#write;
    this.#closeTail();
    this.#outgoing.push(
      w === null ? writePlaintextRecord(type, content) : w.seal(type, content, padding),
    );
  }

  /** Sends the middlebox-compatibility change_cipher_spec (RFC 8446, Appendix D.4). */
  protected sendChangeCipherSpec(): void {
    this.flush();
    this.#writeRecord(ContentType.change_cipher_spec, CHANGE_CIPHER_SPEC);
  }

  protected setSuite(suite: Suite): void {
    this.#suite = suite;
  }

  protected get negotiatedSuite(): Suite | null {
    return this.#suite;
  }

  /** Switches the read direction to new keys; a handshake message must not span the change. */
  protected setReadSecret<S extends KeyStage>(secret: TrafficSecret<S>): void {
    if (this.#joiner.pending) {
      throw new TlsAlert("unexpected_message", "Handshake message spans a key change");
    }
    this.#readSecret = secret as StagedSecret;
    this.#read = this.#protection(secret);
  }

  /** Flushes queued handshake messages under the old key, then switches the write keys. */
  protected setWriteSecret<S extends KeyStage>(secret: TrafficSecret<S>): void {
    this.flush();
    this.#writeSecret = secret as StagedSecret;
    this.#write = this.#protection(secret);
  }

  #protection<S extends KeyStage>(secret: TrafficSecret<S>): StagedProtection {
    const suite = this.#requireSuite();
    return new RecordProtection(
      this.provider,
      suite,
      trafficKeys(this.provider, suite, secret),
    ) as StagedProtection;
  }

  /**
   * Tolerates up to `bytes` of records we cannot read: the client offered early data that we
   * do not accept (RFC 8446, Section 4.2.10). Under the client's handshake keys these are
   * records that fail to open; before any keys (after a HelloRetryRequest) they are all
   * application_data records until the second ClientHello. Zero ends the tolerance.
   */
  protected skipRejectedEarlyData(bytes: number): void {
    this.#earlyDataBudget = bytes;
  }

  /**
   * Lets application data be sent under the application keys already in use for writing, before
   * the peer's Finished (a TLS 1.3 server after its own Finished).
   */
  protected openHalfRtt(): void {
    this.#halfRtt = true;
  }

  /** Marks the handshake done: application data is accepted and may be sent. */
  protected establish(): void {
    this.#established = true;
    this.emit({ kind: "handshakeComplete" });
  }

  /** Processes buffered input (after the driver answered a pending question). */
  protected pump(): void {
    while (!this.#inputClosed && this.acceptingInput) {
      const record = this.#deframer.next();
      if (record === null) break;
      this.#onRecord(record);
    }
    if (!this.acceptingInput && this.#deframer.buffered > MAX_HELD_INPUT) {
      throw new TlsAlert("internal_error", "Too much input while the handshake is paused");
    }
    this.#answerKeyUpdate();
  }

  /**
   * Answers the peer's update_requested KeyUpdates of one batch of input with a single
   * KeyUpdate of our own (RFC 8446, Section 4.6.3 allows one reply for several requests).
   */
  #answerKeyUpdate(): void {
    if (!this.#owesKeyUpdate) return;
    this.#owesKeyUpdate = false;
    if (!this.#outputClosed) this.#updateWriteKeys(false);
  }

  /** Ends the connection for `error`: sends its alert (if we still can) and reports it. */
  protected fail(error: unknown): void {
    if (this.#failed) return;
    const { alert, reason } = alertFromError(error);
    this.#failed = true;
    this.#inputClosed = true;
    this.#dropStaged();
    if (!this.#outputClosed) {
      try {
        this.#sendAlert(alert, AlertLevel.fatal);
      } catch {
        // The write side itself failed (e.g. sequence exhausted): nothing more can be sent.
      }
      this.#outputClosed = true;
    }
    this.emit({ kind: "fatal", alert, sentByUs: true, reason });
  }

  // ---- Record processing ----

  #requireSuite(): Suite {
    if (this.#suite === null) throw new TlsAlert("internal_error", "No cipher suite yet");
    return this.#suite;
  }

  #onRecord(record: TlsRecord): void {
    if (record.type === ContentType.change_cipher_spec) {
      // RFC 8446, Section 5: one byte 0x01, between the hellos and the peer's Finished, and
      // never inside a fragmented handshake message.
      const f = record.fragment;
      if (f.length !== 1 || f[0] !== 1 || this.#joiner.pending || !this.acceptChangeCipherSpec()) {
        throw new TlsAlert("unexpected_message", "Unexpected change_cipher_spec");
      }
      return;
    }
    const opened = this.#unprotect(record);
    if (opened !== null) this.#onContent(opened);
  }

  #unprotect(record: TlsRecord): OpenedRecord | null {
    if (this.#read === null) {
      if (record.type === ContentType.application_data && this.#earlyDataBudget > 0) {
        // RFC 8446, Section 4.2.10: after a HelloRetryRequest the server skips the client's
        // 0-RTT records (all of type application_data) up to its early data limit.
        this.#earlyDataBudget -= record.fragment.length;
        if (this.#earlyDataBudget < 0) {
          throw new TlsAlert("unexpected_message", "Too much early data after HelloRetryRequest");
        }
        return null;
      }
      if (record.type === ContentType.application_data) {
        throw new TlsAlert("unexpected_message", "Protected record before keys were agreed");
      }
      if (record.fragment.length > MAX_PLAINTEXT) {
        throw new TlsAlert("record_overflow", "Record longer than 2^14 bytes");
      }
      return { type: record.type, content: record.fragment };
    }
    if (record.type === ContentType.application_data) {
      if (this.#earlyDataBudget > 0) {
        // RFC 8446, Section 4.2.10: rejected 0-RTT data cannot be opened with the handshake
        // keys; skip such records, within a byte budget, until one opens.
        const opened = this.#read.tryOpen(record);
        if (opened !== null) {
          this.#earlyDataBudget = 0;
          return opened;
        }
        this.#earlyDataBudget -= record.fragment.length;
        if (this.#earlyDataBudget < 0) {
          throw new TlsAlert("bad_record_mac", "Record authentication failed");
        }
        return null;
      }
      return this.#read.open(record);
    }
    // A peer that failed to process our ServerHello may only be able to alert in plaintext.
    if (record.type === ContentType.alert && !this.#established && record.fragment.length === 2) {
      return { type: record.type, content: record.fragment };
    }
    throw new TlsAlert("unexpected_message", "Unprotected record after keys were agreed");
  }

  #onContent(opened: OpenedRecord): void {
    switch (opened.type) {
      case ContentType.handshake:
        this.#joiner.push(opened.content);
        for (let m = this.#joiner.next(); m !== null; m = this.#joiner.next()) {
          if (this.#established) this.#onPostHandshake(m);
          else this.onHandshakeMessage(m);
          if (this.#inputClosed) return;
        }
        return;
      case ContentType.alert:
        if (this.#joiner.pending) {
          throw new TlsAlert("unexpected_message", "Alert inside a handshake message");
        }
        return this.#onAlert(opened.content);
      case ContentType.application_data:
        if (this.#joiner.pending || !this.#established) {
          throw new TlsAlert("unexpected_message", "Application data before the handshake ended");
        }
        // Copied: the Aead contract does not promise that its output is not a view of its input.
        if (opened.content.length > 0) {
          this.#plaintext.push(opened.content.slice());
          this.#keyUpdatesWithoutData = 0;
        }
        return;
      case ContentType.change_cipher_spec:
        throw new TlsAlert("unexpected_message", "Protected change_cipher_spec");
      default: {
        const never: never = opened.type;
        throw new TlsAlert("unexpected_message", `Unknown content type ${never}`);
      }
    }
  }

  /** Alerts (RFC 8446, Section 6): all are fatal except close_notify and user_canceled. */
  #onAlert(content: Uint8Array): void {
    // RFC 8446, Section 5.1: alert records must not be empty; that is a framing violation
    // (unexpected_message), whereas a non-empty alert of the wrong size fails to decode.
    if (content.length === 0) throw new TlsAlert("unexpected_message", "Empty alert record");
    if (content.length !== 2) throw new TlsAlert("decode_error", "Cannot decode alert");
    const description = alertNameOf(content[1]!);
    if (description === "close_notify") {
      this.#inputClosed = true;
      this.emit({ kind: "peerClosed" });
      return;
    }
    if (description === "user_canceled") return;
    this.#failed = true;
    this.#inputClosed = true;
    this.#outputClosed = true;
    this.emit({
      kind: "fatal",
      alert: description ?? "internal_error",
      sentByUs: false,
      reason: description === null ? `Peer sent unknown alert ${content[1]}` : "Peer sent alert",
    });
  }

  #onPostHandshake(msg: HandshakeMessage): void {
    if (msg.type !== HandshakeType.key_update) return this.onPostHandshakeMessage(msg);
    const ku = parseKeyUpdate(msg.body);
    const current = this.#readSecret;
    if (current === null || current.stage !== "application") {
      throw new TlsAlert("unexpected_message", "KeyUpdate before application keys");
    }
    if (++this.#keyUpdatesWithoutData > MAX_KEY_UPDATES_WITHOUT_DATA) {
      throw new TlsAlert("unexpected_message", "Too many KeyUpdates without application data");
    }
    this.setReadSecret(nextTrafficSecret(this.provider, this.#requireSuite(), current));
    if (ku.updateRequested) this.#owesKeyUpdate = true;
  }

  /** Sends KeyUpdate under the current key, then switches to the next one (Section 4.6.3). */
  #updateWriteKeys(requestPeerUpdate: boolean): void {
    const current = this.#writeSecret;
    if (current === null || current.stage !== "application") {
      throw new TlsAlert("internal_error", "KeyUpdate before application keys");
    }
    const msg = writeHandshake(
      HandshakeType.key_update,
      (w) => writeKeyUpdate(w, { updateRequested: requestPeerUpdate }),
    );
    this.#writeRecord(ContentType.handshake, msg);
    this.setWriteSecret(nextTrafficSecret(this.provider, this.#requireSuite(), current));
  }

  #writeRecord(type: ContentType, content: Uint8Array): void {
    if (type === ContentType.application_data) this.#answerKeyUpdate();
    if (
      type === ContentType.application_data && this.#write !== null &&
      this.#write.sequence >= this.#keyUpdateAfterRecords
    ) {
      this.#updateWriteKeys(false);
    }
    const w = this.#write;
    if (w === null) {
      const out = this.#room(RECORD_HEADER_LENGTH + content.length);
      this.#tailUsed += writePlaintextRecordInto(type, content, out, this.#tailUsed);
    } else if (type !== ContentType.application_data || w.stage === "application") {
      const out = this.#room(w.sealedLength(content.length));
      this.#tailUsed += w.sealInto(type, content, out, this.#tailUsed);
    } else {
      throw new TlsAlert("internal_error", "Application data under handshake keys");
    }
  }

  #sendAlert(alert: AlertName, level: number): void {
    this.flush();
    this.#writeRecord(
      ContentType.alert,
      encode((w, _) => w.u8(level).u8(AlertDescription[alert]), null),
    );
  }
}

/** The change_cipher_spec message (RFC 8446, Section 5): the single byte 1. */
const CHANGE_CIPHER_SPEC = Uint8Array.of(1);

/** The bytes of a record header (RFC 8446, Section 5.1). */
const RECORD_HEADER_LENGTH = 5;

/** What `takeOutgoing` and `takePlaintext` return when there is nothing: one array for all. */
export const NOTHING: Uint8Array = new Uint8Array(0);

function drainBytes(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 0) return NOTHING;
  if (parts.length === 1) return parts.pop()!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  parts.length = 0;
  return out;
}
