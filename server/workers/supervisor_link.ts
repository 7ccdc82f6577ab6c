/**
 * A Worker's side of the counts its supervisor keeps for every Worker together: sessions per
 * user (`limits.max_connections_per_user`) and connections per client address
 * (`limits.max_connections_per_address`).
 */
import type { SessionRegistry } from "../../mailstore/session_registry.ts";
import type { AddressGate } from "../connection/listener.ts";
import type { ClaimScope, FromWorker } from "./protocol.ts";

export class SupervisorLink implements SessionRegistry, AddressGate {
  readonly #post: (message: FromWorker) => void;
  readonly #waiting = new Map<number, (ok: boolean) => void>();
  /** Session keys handed out and not yet released: `serial NUL account`. */
  readonly #sessions = new Set<string>();
  #nextCall = 1;
  #nextSession = 1;

  constructor(post: (message: FromWorker) => void) {
    this.#post = post;
  }

  /** The supervisor's answer to a claim. */
  settle(call: number, ok: boolean): void {
    const resolve = this.#waiting.get(call);
    this.#waiting.delete(call);
    resolve?.(ok);
  }

  /** Refuses the claims still waiting (the supervisor is gone or the Worker stops). */
  close(): void {
    for (const resolve of this.#waiting.values()) resolve(false);
    this.#waiting.clear();
  }

  async claimSession(account: string, limit: number): Promise<string | null> {
    if (!(await this.#claim("user", account, limit))) return null;
    const key = `${this.#nextSession++}\0${account}`;
    this.#sessions.add(key);
    return key;
  }

  releaseSession(key: string): Promise<void> {
    if (this.#sessions.delete(key)) {
      this.#post({ kind: "release", scope: "user", key: key.slice(key.indexOf("\0") + 1) });
    }
    return Promise.resolve();
  }

  claim(address: string, limit: number): Promise<boolean> {
    return this.#claim("address", address, limit);
  }

  release(address: string): void {
    this.#post({ kind: "release", scope: "address", key: address });
  }

  #claim(scope: ClaimScope, key: string, limit: number): Promise<boolean> {
    const call = this.#nextCall++;
    return new Promise((resolve) => {
      this.#waiting.set(call, resolve);
      this.#post({ kind: "claim", call, scope, key, limit });
    });
  }
}
