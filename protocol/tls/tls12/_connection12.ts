/**
 * What the TLS 1.2 server and the TLS 1.2 test client share: the record pump, change_cipher_spec,
 * alerts, application data and closure (RFC 5246, Sections 6 and 7.1-7.2). The handshake is the
 * subclass's business; this class hands it complete handshake messages and the peer's
 * change_cipher_spec.
 */
import type { CryptoProvider } from "../../crypto/provider.ts";
import { alertFromError, alertNameOf, TlsAlert } from "../alert.ts";
import type { TlsEvent } from "../_connection.ts";
import { HandshakeJoiner, type HandshakeMessage } from "../messages/handshake.ts";
import { RecordDeframer, type TlsRecord, writePlaintextRecord } from "../record_layer.ts";
import {
  AlertDescription,
  AlertLevel,
  type AlertName,
  ContentType,
  HandshakeType,
  MAX_CLIENT_HELLO,
  MAX_HANDSHAKE_MESSAGE,
  MAX_PLAINTEXT,
} from "../wire.ts";
import type { RecordProtection12 } from "./record_protection.ts";

/** Input we hold while the handshake waits on the driver (peer verification). */
const MAX_HELD_INPUT = 1 << 20;
/** Warning alerts and empty records tolerated in a row before we call it abuse. */
const MAX_IDLE_RECORDS = 32;

export abstract class Connection12 {
  protected readonly provider: CryptoProvider;
  readonly #deframer = new RecordDeframer();
  /** A ClientHello may be as large as in TLS 1.3 (the acceptor hands it over whole). */
  readonly #joiner = new HandshakeJoiner((type) =>
    type === HandshakeType.client_hello ? MAX_CLIENT_HELLO : MAX_HANDSHAKE_MESSAGE
  );
  #read: RecordProtection12 | null = null;
  #write: RecordProtection12 | null = null;
  #pendingHandshake: Uint8Array[] = [];
  #outgoing: Uint8Array[] = [];
  #plaintext: Uint8Array[] = [];
  #events: TlsEvent[] = [];
  #idleRecords = 0;
  #established = false;
  #inputClosed = false;
  #outputClosed = false;
  #failed = false;

  protected constructor(provider: CryptoProvider) {
    this.provider = provider;
  }

  // ---- Hooks for the handshake subclasses ----

  /** Handles one complete handshake message before the connection is established. */
  protected abstract onHandshakeMessage(msg: HandshakeMessage): void;
  /** Handles a handshake message after the handshake (a renegotiation attempt). */
  protected abstract onPostHandshakeMessage(msg: HandshakeMessage): void;
  /** Handles the peer's change_cipher_spec; throws when it is out of place. */
  protected abstract onChangeCipherSpec(): void;
  /** False while the handshake waits on the driver; input is then held, not processed. */
  protected get acceptingInput(): boolean {
    return true;
  }

  // ---- Public surface (the same as the TLS 1.3 connection's) ----

  get handshakeComplete(): boolean {
    return this.#established;
  }

  /** Application data may be sent: TLS 1.2 has no half-RTT data, so once established. */
  get canSend(): boolean {
    return this.#established;
  }

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
    } catch (e) {
      this.fail(e);
    }
  }

  takeOutgoing(): Uint8Array {
    return drainBytes(this.#outgoing);
  }

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
    if (!this.#established) throw new Error("Cannot send application data before the handshake");
    if (this.#outputClosed) throw new Error("Cannot send application data after close");
    try {
      for (let at = 0; at < data.length; at += MAX_PLAINTEXT) {
        this.#writeRecord(ContentType.application_data, data.subarray(at, at + MAX_PLAINTEXT));
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** Queues close_notify (RFC 5246, Section 7.2.1); nothing can be sent afterwards. */
  close(): void {
    if (this.#outputClosed) return;
    // A flight cut short (e.g. while its signature is pending) is dropped, not half sent.
    if (!this.#established) this.#pendingHandshake = [];
    try {
      this.sendAlert("close_notify", AlertLevel.warning);
    } catch (e) {
      this.fail(e);
    }
    this.#outputClosed = true;
  }

  /** TLS 1.2 has no KeyUpdate; the driver never asks for one on a 1.2 connection. */
  requestKeyUpdate(): void {
    throw new Error("TLS 1.2 has no KeyUpdate");
  }

  // ---- Services for the subclasses ----

  /** Writes one record of `type` under the current write state (tests build odd records). */
  protected writeRecord(type: ContentType, content: Uint8Array): void {
    this.#writeRecord(type, content);
  }

  protected emit(event: TlsEvent): void {
    this.#events.push(event);
  }

  protected queueHandshake(encoded: Uint8Array): void {
    this.#pendingHandshake.push(encoded);
  }

  /** Writes queued handshake messages as records under the current write state. */
  protected flush(): void {
    if (this.#pendingHandshake.length === 0) return;
    const all = drainBytes(this.#pendingHandshake);
    for (let at = 0; at < all.length; at += MAX_PLAINTEXT) {
      this.#writeRecord(ContentType.handshake, all.subarray(at, at + MAX_PLAINTEXT));
    }
  }

  /** Sends change_cipher_spec under the current write state, then switches to `next`. */
  protected changeWriteCipher(next: RecordProtection12): void {
    this.flush();
    this.#writeRecord(ContentType.change_cipher_spec, new Uint8Array([1]));
    this.#write = next;
  }

  /** Switches the read direction after the peer's change_cipher_spec. */
  protected changeReadCipher(next: RecordProtection12): void {
    this.#read = next;
  }

  protected establish(): void {
    this.#established = true;
    this.emit({ kind: "handshakeComplete" });
  }

  protected sendAlert(alert: AlertName, level: number): void {
    this.flush();
    this.#writeRecord(ContentType.alert, new Uint8Array([level, AlertDescription[alert]]));
  }

  protected pump(): void {
    while (!this.#inputClosed && this.acceptingInput) {
      const record = this.#deframer.next();
      if (record === null) return;
      this.#onRecord(record);
    }
    if (!this.acceptingInput && this.#deframer.buffered > MAX_HELD_INPUT) {
      throw new TlsAlert("internal_error", "Too much input while the handshake is paused");
    }
  }

  /** Ends the connection for `error`: sends its alert (if we still can) and reports it. */
  protected fail(error: unknown): void {
    if (this.#failed) return;
    const { alert, reason } = alertFromError(error);
    this.#failed = true;
    this.#inputClosed = true;
    this.#pendingHandshake = [];
    if (!this.#outputClosed) {
      try {
        this.sendAlert(alert, AlertLevel.fatal);
      } catch {
        // The write side itself failed (e.g. sequence exhausted): nothing more can be sent.
      }
      this.#outputClosed = true;
    }
    this.emit({ kind: "fatal", alert, sentByUs: true, reason });
  }

  // ---- Record processing ----

  #onRecord(record: TlsRecord): void {
    const content = this.#unprotect(record);
    switch (record.type) {
      case ContentType.change_cipher_spec:
        // RFC 5246, Section 7.1: one byte 0x01, never inside a fragmented handshake message.
        if (content.length !== 1 || content[0] !== 1 || this.#joiner.pending) {
          throw new TlsAlert("unexpected_message", "Malformed change_cipher_spec");
        }
        this.#idleRecords = 0;
        return this.onChangeCipherSpec();
      case ContentType.handshake:
        this.#idleRecords = 0;
        this.#joiner.push(content);
        for (let m = this.#joiner.next(); m !== null; m = this.#joiner.next()) {
          if (this.#established) this.onPostHandshakeMessage(m);
          else this.onHandshakeMessage(m);
          if (this.#inputClosed) return;
          if (!this.acceptingInput) {
            // A paused handshake expects nothing more in this flight of the peer's.
            if (this.#joiner.pending) {
              throw new TlsAlert("unexpected_message", "Handshake message while paused");
            }
            return;
          }
        }
        return;
      case ContentType.alert:
        if (this.#joiner.pending) {
          throw new TlsAlert("unexpected_message", "Alert inside a handshake message");
        }
        return this.#onAlert(content);
      case ContentType.application_data:
        if (this.#joiner.pending || !this.#established) {
          throw new TlsAlert("unexpected_message", "Application data before the handshake ended");
        }
        // RFC 5246, Section 6.2.1: zero-length application data is allowed (a traffic
        // analysis countermeasure); only a long run of them is refused.
        if (content.length === 0) return this.#idle();
        this.#idleRecords = 0;
        this.#plaintext.push(content.slice());
        return;
      default: {
        const never: never = record.type;
        throw new TlsAlert("unexpected_message", `Unknown content type ${never}`);
      }
    }
  }

  #idle(): void {
    if (++this.#idleRecords > MAX_IDLE_RECORDS) {
      throw new TlsAlert("unexpected_message", "Too many empty records or warnings in a row");
    }
  }

  #unprotect(record: TlsRecord): Uint8Array {
    if (this.#read === null) {
      if (record.type === ContentType.application_data) {
        throw new TlsAlert("unexpected_message", "Application data before keys were agreed");
      }
      if (record.fragment.length > MAX_PLAINTEXT) {
        throw new TlsAlert("record_overflow", "Record longer than 2^14 bytes");
      }
      return record.fragment;
    }
    return this.#read.open(record).content;
  }

  /**
   * Alerts (RFC 5246, Section 7.2): close_notify ends the input; other warnings are ignored
   * (within a bound); any fatal alert ends the connection.
   */
  #onAlert(content: Uint8Array): void {
    if (content.length !== 2) throw new TlsAlert("decode_error", "Cannot decode alert");
    const level = content[0]!;
    const description = alertNameOf(content[1]!);
    if (description === "close_notify") {
      this.#inputClosed = true;
      this.emit({ kind: "peerClosed" });
      return;
    }
    if (level === AlertLevel.warning && description !== null) return this.#idle();
    if (level !== AlertLevel.warning && level !== AlertLevel.fatal) {
      throw new TlsAlert("illegal_parameter", "Unknown alert level");
    }
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

  #writeRecord(type: ContentType, content: Uint8Array): void {
    const w = this.#write;
    this.#outgoing.push(w === null ? writePlaintextRecord(type, content) : w.seal(type, content));
  }
}

function drainBytes(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 0) return new Uint8Array(0);
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
