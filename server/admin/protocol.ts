/**
 * The admin socket protocol, version 1: one JSON object per line (JSON Lines) each way, one
 * response per request, in order.
 *
 * ```
 * → {"v":1,"id":1,"cmd":"who"}
 * ← {"v":1,"id":1,"ok":true,"result":{"sessions":[…]}}
 * → {"v":1,"id":2,"cmd":"kick","user":"alice"}
 * ← {"v":1,"id":2,"ok":true,"result":{"kicked":2}}
 * → {"v":2,"id":3,"cmd":"who"}
 * ← {"v":1,"id":3,"ok":false,"error":"unsupported protocol version 2 (this server speaks 1)"}
 * ```
 *
 * Commands: `who`, `kick` (with `user` or `peer`), `reload`, `stats`. A request that cannot be
 * understood gets `ok: false` and the connection stays usable; a line longer than
 * `MAX_LINE_BYTES` ends the connection.
 */

import { concatBytes } from "../../protocol/bytes.ts";

export const ADMIN_PROTOCOL_VERSION = 1;

/** Longest request or response line, newline excluded. */
export const MAX_LINE_BYTES = 64 * 1024;

export type AdminRequest =
  | { readonly v: 1; readonly id: number; readonly cmd: "who" }
  | { readonly v: 1; readonly id: number; readonly cmd: "kick"; readonly user: string }
  | { readonly v: 1; readonly id: number; readonly cmd: "kick"; readonly peer: string }
  | { readonly v: 1; readonly id: number; readonly cmd: "reload" }
  | { readonly v: 1; readonly id: number; readonly cmd: "stats" };

export type AdminCommand = AdminRequest["cmd"];

/** One session as `who` lists it. */
export interface SessionRecord {
  readonly user: string | null;
  readonly peer: string;
  readonly listener: string;
  /** `TLSv1.3`, or null before STARTTLS. */
  readonly tlsVersion: string | null;
  readonly tlsSuite: string | null;
  readonly certificateSubject: string | null;
  /** ISO 8601. */
  readonly since: string;
  readonly mailbox: string | null;
}

export interface WhoResult {
  readonly sessions: readonly SessionRecord[];
}
export interface KickResult {
  readonly kicked: number;
}
export interface ReloadResult {
  /** Whether the new configuration was taken; when not, the old one still runs. */
  readonly taken: boolean;
  readonly error?: string;
}
export interface StatsResult {
  readonly counters: Readonly<Record<string, number>>;
}

export type AdminResponse =
  | { readonly v: 1; readonly id: number | null; readonly ok: true; readonly result: unknown }
  | { readonly v: 1; readonly id: number | null; readonly ok: false; readonly error: string };

/** A request that cannot be served; `id` is the request's when it could be read. */
export class AdminProtocolError extends Error {
  readonly id: number | null;
  constructor(message: string, id: number | null = null) {
    super(message);
    this.name = "AdminProtocolError";
    this.id = id;
  }
}

const COMMANDS: readonly AdminCommand[] = ["who", "kick", "reload", "stats"];
const MAX_ARGUMENT_LENGTH = 1024;

/** Reads one request line (without its newline). Throws `AdminProtocolError`. */
export function parseRequest(line: string): AdminRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new AdminProtocolError("Request is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new AdminProtocolError("Request is not a JSON object");
  }
  const o = value as Record<string, unknown>;
  const id = typeof o.id === "number" && Number.isSafeInteger(o.id) ? o.id : null;
  if (id === null) throw new AdminProtocolError("Request needs an integer id");
  if (o.v !== ADMIN_PROTOCOL_VERSION) {
    throw new AdminProtocolError(
      `Unsupported protocol version ${
        JSON.stringify(o.v ?? null)
      } (this server speaks ${ADMIN_PROTOCOL_VERSION})`,
      id,
    );
  }
  const cmd = o.cmd;
  if (typeof cmd !== "string" || !(COMMANDS as readonly string[]).includes(cmd)) {
    throw new AdminProtocolError(
      `Unknown command ${JSON.stringify(cmd ?? null)} (expected ${COMMANDS.join(", ")})`,
      id,
    );
  }
  const allowed = cmd === "kick" ? ["v", "id", "cmd", "user", "peer"] : ["v", "id", "cmd"];
  const extra = Object.keys(o).find((k) => !allowed.includes(k));
  if (extra !== undefined) throw new AdminProtocolError(`Unknown field "${extra}" in ${cmd}`, id);
  if (cmd !== "kick") return { v: ADMIN_PROTOCOL_VERSION, id, cmd } as AdminRequest;
  const user = argument(o.user, "user", id);
  const peer = argument(o.peer, "peer", id);
  if ((user === null) === (peer === null)) {
    throw new AdminProtocolError("kick needs exactly one of user and peer", id);
  }
  return user !== null
    ? { v: ADMIN_PROTOCOL_VERSION, id, cmd, user }
    : { v: ADMIN_PROTOCOL_VERSION, id, cmd, peer: peer! };
}

function argument(value: unknown, name: string, id: number): string | null {
  if (value === undefined) return null;
  if (typeof value !== "string" || value === "" || value.length > MAX_ARGUMENT_LENGTH) {
    throw new AdminProtocolError(`${name} must be a non-empty string`, id);
  }
  return value;
}

/** A response line, newline included. */
export function encodeResponse(response: AdminResponse): string {
  return JSON.stringify(response) + "\n";
}

/** A request line, newline included. */
export function encodeRequest(request: AdminRequest): string {
  return JSON.stringify(request) + "\n";
}

/** Reads one response line. Throws `AdminProtocolError`. */
export function parseResponse(line: string): AdminResponse {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new AdminProtocolError("Response is not JSON");
  }
  if (typeof value !== "object" || value === null) {
    throw new AdminProtocolError("Response is not a JSON object");
  }
  const o = value as Record<string, unknown>;
  if (o.v !== ADMIN_PROTOCOL_VERSION) {
    throw new AdminProtocolError(`Server speaks protocol version ${JSON.stringify(o.v ?? null)}`);
  }
  const id = typeof o.id === "number" ? o.id : null;
  if (o.ok === true) return { v: ADMIN_PROTOCOL_VERSION, id, ok: true, result: o.result };
  if (o.ok === false && typeof o.error === "string") {
    return { v: ADMIN_PROTOCOL_VERSION, id, ok: false, error: o.error };
  }
  throw new AdminProtocolError("Response has neither a result nor an error");
}

/**
 * Splits a byte stream into lines, refusing any line over `maxBytes`. Feed chunks with
 * `push`; take complete lines with `next`.
 */
export class LineSplitter {
  readonly #maxBytes: number;
  readonly #decoder = new TextDecoder();
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  readonly #lines: string[] = [];

  constructor(maxBytes = MAX_LINE_BYTES) {
    this.#maxBytes = maxBytes;
  }

  /** Throws `AdminProtocolError` when a line grows past the limit. */
  push(chunk: Uint8Array): void {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 0x0a) continue;
      this.#append(chunk.subarray(start, i));
      const line = this.#take();
      this.#lines.push(line.endsWith("\r") ? line.slice(0, -1) : line);
      start = i + 1;
    }
    this.#append(chunk.subarray(start));
  }

  /** The next complete line, or null. */
  next(): string | null {
    return this.#lines.shift() ?? null;
  }

  #append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#pendingBytes += bytes.length;
    if (this.#pendingBytes > this.#maxBytes) {
      throw new AdminProtocolError(`Line longer than ${this.#maxBytes} bytes`);
    }
    this.#pending.push(bytes.slice());
  }

  #take(): string {
    const line = this.#decoder.decode(concatBytes(this.#pending, this.#pendingBytes));
    this.#pending = [];
    this.#pendingBytes = 0;
    return line;
  }
}
