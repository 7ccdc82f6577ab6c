/**
 * The thread that does the server's handshake work ahead (protocol/crypto/ahead.ts): the nonces
 * of its P-256 certificate keys' signatures and X25519 key pairs, so that the event loop only
 * finishes them. With `tls.signing: auto` (the default); `sync` keeps RFC 6979 nonces and
 * key pairs made inline, `async` signs with WebCrypto. It follows the keys across reloads.
 */
import type { PrivateKey } from "../../protocol/crypto/provider.ts";
import { p256Scalar, stopUsing, useHandshakeAhead } from "../../protocol/crypto/mod.ts";
import { p256WasmSigner } from "../../protocol/crypto/p256_wasm/mod.ts";
import { HandshakeAhead } from "../../protocol/crypto/ahead.ts";
import type { ServerOptions } from "../../protocol/tls/mod.ts";
import type { SigningMode } from "../config/tls.ts";
import { getLogger } from "../log.ts";

const log = getLogger(["tls"]);

type P256Key = Extract<PrivateKey, { kind: "ec" }>;

/** The P-256 keys of a TLS configuration, each once. */
function p256Keys(config: ServerOptions): P256Key[] {
  const keys = new Set<P256Key>();
  for (const key of config.certificates?.map((c) => c.privateKey) ?? [config.privateKey]) {
    if (key.kind === "ec" && key.curve === "P-256") keys.add(key);
  }
  return [...keys];
}

export class ServerAhead {
  readonly #enabled: boolean;
  #work: HandshakeAhead | null = null;
  #keys: P256Key[] = [];

  /** Works ahead only with `auto` signing, where the WebAssembly core and Workers are. */
  constructor(signing: SigningMode) {
    this.#enabled = signing === "auto" && typeof Worker === "function" &&
      p256WasmSigner() !== null;
  }

  /** The running thread, if any. */
  get work(): HandshakeAhead | null {
    return this.#work;
  }

  /** Starts the thread for the keys of `config`, or a new one when they changed. */
  follow(config: ServerOptions): void {
    if (!this.#enabled) return;
    const keys = p256Keys(config);
    if (
      this.#work !== null && keys.length === this.#keys.length &&
      keys.every((k, i) => k === this.#keys[i])
    ) return;
    const previous = this.#work;
    let work: HandshakeAhead;
    try {
      work = new HandshakeAhead({ p256: keys.map(p256Scalar), x25519: true });
    } catch {
      return; // No Worker here (e.g. not permitted): the handshakes do it all inline.
    }
    if (previous !== null) {
      stopUsing(previous, this.#keys);
      void previous.stop();
    }
    this.#work = work;
    this.#keys = keys;
    useHandshakeAhead(work, keys);
    void work.started.then((report) => {
      if (report.nice !== null) return;
      log.warn(
        "The thread making handshake nonces and key pairs ahead runs at the server's priority, " +
          "where it competes with the event loop for a core: {error}",
        { error: report.error ?? "unknown" },
      );
    });
    void work.ended.then((report) => {
      if (report.error === undefined) return;
      log.warn("The thread making handshake nonces and key pairs ahead ended: {error}", {
        error: report.error,
      });
      if (this.#work !== work) return;
      stopUsing(work, keys);
      this.#work = null;
    });
  }

  /** Stops the thread. */
  async close(): Promise<void> {
    const work = this.#work;
    if (work === null) return;
    this.#work = null;
    stopUsing(work, this.#keys);
    await work.stop();
  }
}
