/**
 * The running transcript hash (RFC 8446, Section 4.4.1). Messages are kept raw until the
 * cipher suite (and so the hash) is known; a HelloRetryRequest replaces ClientHello1 with the
 * synthetic `message_hash` message.
 */
import type { CryptoProvider, HashAlgorithm, HashContext } from "../crypto/provider.ts";
import { HandshakeType } from "./wire.ts";

export class Transcript {
  readonly #provider: CryptoProvider;
  #pending: Uint8Array[] = [];
  #ctx: HashContext | null = null;
  #hash: HashAlgorithm | null = null;

  constructor(provider: CryptoProvider) {
    this.#provider = provider;
  }

  /** Fixes the hash function once the suite is chosen and hashes what was buffered. */
  start(hash: HashAlgorithm): void {
    if (this.#ctx !== null) {
      if (hash !== this.#hash) throw new Error("Transcript hash changed mid-handshake");
      return;
    }
    this.#hash = hash;
    this.#ctx = this.#provider.createHash(hash);
    for (const m of this.#pending) this.#ctx.update(m);
    this.#pending = [];
  }

  /** Appends one encoded handshake message (header included). */
  add(message: Uint8Array): void {
    if (this.#ctx === null) this.#pending.push(message.slice());
    else this.#ctx.update(message);
  }

  /** Hash of the messages so far. */
  current(): Uint8Array {
    if (this.#ctx === null) throw new Error("Transcript hash not started");
    return this.#ctx.digest();
  }

  /** Hash of the messages so far followed by `extra`, leaving the transcript unchanged. */
  currentWith(extra: Uint8Array): Uint8Array {
    if (this.#ctx === null) throw new Error("Transcript hash not started");
    const ctx = this.#ctx.clone();
    ctx.update(extra);
    return ctx.digest();
  }

  /**
   * Replaces everything so far (ClientHello1) with message_hash(Hash(ClientHello1))
   * (RFC 8446, Section 4.4.1).
   */
  replaceWithMessageHash(): void {
    const hash = this.#hash;
    if (hash === null || this.#ctx === null) throw new Error("Transcript hash not started");
    const digest = this.#ctx.digest();
    this.#ctx = this.#provider.createHash(hash);
    const header = new Uint8Array([HandshakeType.message_hash, 0, 0, digest.length]);
    this.#ctx.update(header);
    this.#ctx.update(digest);
  }
}
