/**
 * Reads the PROXY protocol header (protocol/proxy) off a freshly accepted connection, before
 * TLS or the IMAP greeting: within a deadline for the whole header, so that a peer trickling
 * bytes cannot hold the connection, and never more than the header's cap from the socket.
 */
import {
  DEFAULT_MAX_PROXY_HEADER,
  type ProxyHeader,
  ProxyHeaderError,
  readProxyHeader,
} from "../../protocol/proxy/mod.ts";
import { readOrNull } from "./channel.ts";

/** How long a balancer may take to send the whole header; they send it with the connection. */
export const PROXY_HEADER_TIMEOUT_MS = 5_000;

export interface ProxyRead {
  readonly header: ProxyHeader;
  /** Bytes received after the header: the start of the TLS handshake or of IMAP. */
  readonly rest: Uint8Array;
}

/**
 * Reads until the header is complete. Throws `ProxyHeaderError` for a missing, malformed,
 * oversized, late or cut-off header; the caller closes the connection.
 */
export async function readProxyFrom(
  conn: Deno.Conn,
  timeoutMs: number = PROXY_HEADER_TIMEOUT_MS,
  maxLength: number = DEFAULT_MAX_PROXY_HEADER,
): Promise<ProxyRead> {
  // One buffer of the cap: the socket is never read past it, whatever the peer sends.
  const buffer = new Uint8Array(maxLength);
  let filled = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ProxyHeaderError(`No complete PROXY header within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    while (true) {
      if (filled === buffer.length) {
        throw new ProxyHeaderError(`PROXY header longer than ${maxLength} bytes`);
      }
      const read = readOrNull(conn, buffer.subarray(filled));
      // A read left pending by the deadline ends when the caller closes the connection.
      read.catch(() => {});
      const n = await Promise.race([read, deadline]);
      if (n === null) {
        throw new ProxyHeaderError(
          filled === 0 ? "Closed before the PROXY header" : "Closed within the PROXY header",
        );
      }
      filled += n;
      const result = readProxyHeader(buffer.subarray(0, filled), maxLength);
      if (result.kind === "complete") {
        return { header: result.header, rest: buffer.slice(result.length, filled) };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}
