/** `listen:` — the IMAP listening sockets. */
import * as v from "valibot";
import type { Positions } from "./_positions.ts";
import { choice, describeValue, section, text } from "./_schema.ts";
import { parseAddress } from "./values.ts";

/** How a listener starts TLS: at once (RFC 8314) or after STARTTLS (RFC 9051, Section 6.2.1). */
export const TLS_MODES = ["implicit", "starttls"] as const;
export type TlsMode = (typeof TLS_MODES)[number];

/** One listening socket. */
export interface ListenerConfig {
  /** The address as written, e.g. `127.0.0.1:9993`. */
  readonly address: string;
  readonly hostname: string;
  /** 0 lets the OS pick a free port. */
  readonly port: number;
  readonly tls: TlsMode;
}

/** `host:port` or `[ipv6]:port`; port 0 asks the OS for a free port. */
export function address(): v.GenericSchema<unknown, string> {
  return v.pipe(
    text(),
    v.check(
      (a) => parseAddress(a).ok,
      (i) => {
        const parsed = parseAddress(String(i.input));
        return `invalid address "${i.input}": ${parsed.ok ? "" : parsed.reason}`;
      },
    ),
  );
}

export const listenSchema = v.pipe(
  v.array(
    section({ address: address(), tls: choice(TLS_MODES) }),
    (i) => `expected a list of {address, tls} entries, got ${describeValue(i.input)}`,
  ),
  v.minLength(1, "at least one listener is required"),
  v.description("IMAP listeners: implicit TLS (RFC 8314) or STARTTLS"),
);

export const DEFAULT_LISTEN = [
  { address: "127.0.0.1:9993", tls: "implicit" },
  { address: "127.0.0.1:9143", tls: "starttls" },
] as const;

export function readListen(
  file: v.InferOutput<typeof listenSchema>,
  at: Positions,
): ListenerConfig[] {
  const seen = new Set<string>();
  return file.map(({ address, tls }, index) => {
    const parsed = parseAddress(address);
    if (!parsed.ok) throw new Error("Address was checked by the schema");
    const key = `${parsed.value.hostname}:${parsed.value.port}`;
    if (parsed.value.port !== 0 && seen.has(key)) {
      at.fail(
        ["listen", index, "address"],
        `address "${address}" is already used by another listener`,
      );
    }
    seen.add(key);
    return { address, ...parsed.value, tls };
  });
}
