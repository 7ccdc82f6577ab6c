/** The client side of the admin socket, for the `postern who|kick|reload|stats` commands. */
import { closeQuietly, writeAll } from "../connection/channel.ts";
import {
  ADMIN_PROTOCOL_VERSION,
  AdminProtocolError,
  type AdminResponse,
  encodeRequest,
  LineSplitter,
  parseResponse,
} from "./protocol.ts";

/** The admin socket cannot be reached or answered out of turn. */
export class AdminClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AdminClientError";
  }
}

export type AdminCall =
  | { readonly cmd: "who" | "reload" | "stats" }
  | { readonly cmd: "kick"; readonly user: string }
  | { readonly cmd: "kick"; readonly peer: string };

/** Sends one request and waits (at most `timeoutMs`, default 30 s) for its response. */
export async function callAdmin(
  path: string,
  call: AdminCall,
  timeoutMs = 30_000,
): Promise<AdminResponse> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "no such socket"
      : error instanceof Deno.errors.ConnectionRefused
      ? "nothing listening"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new AdminClientError(
      `cannot reach the admin socket ${path} (${why}); is the server running with admin enabled?`,
    );
  }
  const timer = setTimeout(() => closeQuietly(conn), timeoutMs);
  try {
    const id = 1;
    await writeAll(
      conn,
      new TextEncoder().encode(encodeRequest({ v: ADMIN_PROTOCOL_VERSION, id, ...call })),
    );
    const lines = new LineSplitter(16 * 1024 * 1024);
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const line = lines.next();
      if (line !== null) {
        const response = parseResponse(line);
        if (response.id !== id && response.ok) {
          throw new AdminClientError("the admin socket answered another request");
        }
        return response;
      }
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) throw new AdminClientError("the admin socket closed without an answer");
      lines.push(buffer.subarray(0, n));
    }
  } catch (error) {
    if (error instanceof AdminProtocolError) throw new AdminClientError(error.message);
    throw error;
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}
