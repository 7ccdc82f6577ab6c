/** `listen:` — the IMAP listening sockets. */
import * as v from "valibot";
import type { Positions } from "./_positions.ts";
import { bool, choice, describeValue, optional, section, text } from "./_schema.ts";
import { parseCidr } from "../../protocol/proxy/mod.ts";
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
  /** Whether each connection starts with a PROXY protocol header (v2 or v1) from a balancer. */
  readonly proxyProtocol: boolean;
  /** The CIDRs a PROXY header is accepted from (`listen[].trusted_proxies`), as written. */
  readonly trustedProxies: readonly string[];
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

const CIDR_LIST = "a list of addresses or CIDRs";

/** The balancers whose PROXY headers are believed: IP addresses or CIDRs, at least one. */
function trustedProxies() {
  const cidr = v.pipe(
    v.string((i) =>
      `expected an IP address or CIDR such as 10.0.0.0/8, got ${describeValue(i.input)}`
    ),
    v.check(
      (c) => parseCidr(c) !== null,
      (i) => `expected an IP address or CIDR such as 10.0.0.0/8, got "${i.input}"`,
    ),
  );
  return v.pipe(
    v.array(cidr, (i) => `expected ${CIDR_LIST}, got ${describeValue(i.input)}`),
    v.minLength(1, (i) => `expected ${CIDR_LIST}, got ${describeValue(i.input)}`),
  );
}

export const listenSchema = v.pipe(
  v.array(
    section({
      address: address(),
      tls: choice(TLS_MODES),
      proxy_protocol: optional(bool(), false),
      trusted_proxies: v.optional(trustedProxies()),
    }),
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
  return file.map(({ address, tls, proxy_protocol, trusted_proxies }, index) => {
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
    // Fail closed: a PROXY listener believes no one unless told whom.
    // A list that was written but refused has been reported already.
    const written = at.node(["listen", index, "trusted_proxies"]) !== undefined;
    if (proxy_protocol && !written) {
      at.fail(
        ["listen", index, "proxy_protocol"],
        "needs trusted_proxies, the addresses of the balancers (such as [10.0.0.0/8])",
      );
    }
    if (!proxy_protocol && written && trusted_proxies !== undefined) {
      at.fail(["listen", index, "trusted_proxies"], "applies only with proxy_protocol: true");
    }
    return {
      address,
      ...parsed.value,
      tls,
      proxyProtocol: proxy_protocol,
      trustedProxies: proxy_protocol ? trusted_proxies ?? [] : [],
    };
  });
}
