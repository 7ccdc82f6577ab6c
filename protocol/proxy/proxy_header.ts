/**
 * A sans-IO reader of the PROXY protocol header that a load balancer (HAProxy, AWS NLB, nginx
 * stream) puts in front of a relayed TCP connection: version 2 (binary) and version 1 (text),
 * per HAProxy's "The PROXY protocol" (doc/proxy-protocol.txt, versions 1 and 2).
 *
 * The caller hands over the bytes received so far; the reader answers that it needs more, or
 * gives the header and its length (the bytes after it belong to the application protocol), or
 * throws a `ProxyHeaderError`. It never reads past its length cap, so a peer that keeps sending
 * cannot make it buffer more.
 */
import { formatIpAddress, parseIpAddress } from "./ip_address.ts";

/** The 12-byte signature that opens a version 2 header (Section 2.2). */
export const PROXY_V2_SIGNATURE: Uint8Array = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
);

/** The longest version 1 line, CRLF included (Section 2.1). */
export const MAX_V1_LENGTH = 107;

/**
 * The largest version 2 header accepted by default: the 16 fixed bytes, the largest address
 * block (216 bytes for UNIX) and room for the TLVs that balancers send (ALPN, authority,
 * unique id, SSL details). The format allows 65,551 bytes; nothing we use needs them.
 */
export const DEFAULT_MAX_PROXY_HEADER = 1024;

const V1_PREFIX = new TextEncoder().encode("PROXY ");

/** The command of a version 2 header (Section 2.2, the 13th byte's low nibble). */
export const ProxyCommand = { local: 0x0, proxy: 0x1 } as const;

/** Address families (high nibble of the 14th byte) and the address block each one needs. */
const FAMILIES = {
  0x0: { name: "unspec", addressBytes: 0 },
  0x1: { name: "inet", addressBytes: 12 },
  0x2: { name: "inet6", addressBytes: 36 },
  0x3: { name: "unix", addressBytes: 216 },
} as const;

/** Transport protocols (low nibble of the 14th byte). */
const TRANSPORTS = { 0x0: "unspec", 0x1: "stream", 0x2: "dgram" } as const;

export type ProxyFamily = (typeof FAMILIES)[keyof typeof FAMILIES]["name"];

/** One end of the relayed connection. */
export interface ProxyEndpoint {
  /** Canonical text: dotted IPv4 or RFC 5952 IPv6; IPv4-mapped IPv6 is given as IPv4. */
  readonly address: string;
  readonly port: number;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /**
   * `proxy`: a relayed client connection. `local`: the balancer speaks for itself (a health
   * check); the socket's own endpoints apply.
   */
  readonly command: "proxy" | "local";
  /** The address family; `unspec` for LOCAL and for version 1 `UNKNOWN`. */
  readonly family: ProxyFamily;
  /**
   * The original client and the address it reached; null when the header carries no IP
   * endpoints (LOCAL, UNSPEC, UNIX, `UNKNOWN`): then the socket's own endpoints apply.
   */
  readonly source: ProxyEndpoint | null;
  readonly destination: ProxyEndpoint | null;
  /** How many TLVs (version 2) followed the addresses; they are skipped, not interpreted. */
  readonly tlvCount: number;
}

/** What the bytes received so far amount to. */
export type ProxyHeaderResult =
  | { readonly kind: "incomplete" }
  | { readonly kind: "complete"; readonly header: ProxyHeader; readonly length: number };

/** The header is missing, malformed, unsupported or too long; the connection must be closed. */
export class ProxyHeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProxyHeaderError";
  }
}

const INCOMPLETE: ProxyHeaderResult = { kind: "incomplete" };

/**
 * Reads the PROXY header at the start of `input` (version 2 or version 1). `maxLength` caps a
 * version 2 header; a version 1 line is capped at 107 bytes by the specification.
 */
export function readProxyHeader(
  input: Uint8Array,
  maxLength: number = DEFAULT_MAX_PROXY_HEADER,
): ProxyHeaderResult {
  if (input.length === 0) return INCOMPLETE;
  if (startsWith(input, PROXY_V2_SIGNATURE)) return readV2(input, maxLength);
  if (startsWith(input, V1_PREFIX)) return readV1(input);
  throw new ProxyHeaderError("Expected a PROXY protocol header");
}

/** Whether `input` agrees with `prefix` for as many bytes as both have. */
function startsWith(input: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(input.length, prefix.length);
  for (let i = 0; i < n; i++) if (input[i] !== prefix[i]) return false;
  return true;
}

/** Version 2 (Section 2.2): signature, version and command, family and transport, length. */
function readV2(input: Uint8Array, maxLength: number): ProxyHeaderResult {
  if (input.length < 16) return INCOMPLETE;
  const versionCommand = input[12]!;
  if (versionCommand >> 4 !== 0x2) {
    throw new ProxyHeaderError(`Unsupported PROXY protocol version ${versionCommand >> 4}`);
  }
  const command = versionCommand & 0x0f;
  if (command !== ProxyCommand.local && command !== ProxyCommand.proxy) {
    throw new ProxyHeaderError(`Unknown PROXY v2 command ${command}`);
  }
  const length = 16 + ((input[14]! << 8) | input[15]!);
  if (length > maxLength) {
    throw new ProxyHeaderError(`PROXY v2 header too long: ${length} bytes (at most ${maxLength})`);
  }
  if (input.length < length) return INCOMPLETE;
  const block = input.subarray(16, length);
  if (command === ProxyCommand.local) {
    // The block, family included, is to be ignored: the balancer speaks for itself.
    const header: ProxyHeader = {
      version: 2,
      command: "local",
      family: "unspec",
      source: null,
      destination: null,
      tlvCount: 0,
    };
    return { kind: "complete", header, length };
  }
  const familyByte = input[13]!;
  const family = FAMILIES[(familyByte >> 4) as keyof typeof FAMILIES];
  if (family === undefined) {
    throw new ProxyHeaderError(`Unknown PROXY v2 address family ${familyByte >> 4}`);
  }
  const transport = TRANSPORTS[(familyByte & 0x0f) as keyof typeof TRANSPORTS];
  if (transport === undefined) {
    throw new ProxyHeaderError(`Unknown PROXY v2 transport ${familyByte & 0x0f}`);
  }
  // This server relays streams only; a datagram flow announced here is a confused peer.
  if (family.name !== "unspec" && transport !== "stream") {
    throw new ProxyHeaderError(`Unsupported PROXY v2 transport ${transport}`);
  }
  if (block.length < family.addressBytes) {
    throw new ProxyHeaderError(
      `PROXY v2 address block too short for ${family.name}: ${block.length} bytes`,
    );
  }
  let source: ProxyEndpoint | null = null;
  let destination: ProxyEndpoint | null = null;
  if (family.name === "inet" || family.name === "inet6") {
    const size = family.name === "inet" ? 4 : 16;
    const ports = 2 * size;
    source = {
      address: formatIpAddress(block.subarray(0, size)),
      port: (block[ports]! << 8) | block[ports + 1]!,
    };
    destination = {
      address: formatIpAddress(block.subarray(size, ports)),
      port: (block[ports + 2]! << 8) | block[ports + 3]!,
    };
  }
  const tlvCount = countTlvs(block.subarray(family.addressBytes));
  const header: ProxyHeader = {
    version: 2,
    command: "proxy",
    family: family.name,
    source,
    destination,
    tlvCount,
  };
  return { kind: "complete", header, length };
}

/**
 * Walks the type-length-value records after the addresses (Section 2.2.7) only to check that
 * they fill the block exactly; their contents are not used. Bounded by the block's length.
 */
function countTlvs(tlvs: Uint8Array): number {
  let count = 0;
  let at = 0;
  while (at < tlvs.length) {
    if (tlvs.length - at < 3) throw new ProxyHeaderError("Truncated PROXY v2 TLV");
    const size = (tlvs[at + 1]! << 8) | tlvs[at + 2]!;
    if (at + 3 + size > tlvs.length) {
      throw new ProxyHeaderError(`PROXY v2 TLV of type ${tlvs[at]} overruns the header`);
    }
    at += 3 + size;
    count++;
  }
  return count;
}

const V1_PORT = /^(0|[1-9][0-9]{0,4})$/;

/**
 * Version 1 (Section 2.1): `PROXY TCP4|TCP6 source destination sport dport\r\n`, or
 * `PROXY UNKNOWN …\r\n`, 107 bytes at most.
 */
function readV1(input: Uint8Array): ProxyHeaderResult {
  const limit = Math.min(input.length, MAX_V1_LENGTH);
  let end = -1;
  for (let i = 0; i < limit; i++) {
    const byte = input[i]!;
    if (byte === 0x0d) {
      if (i + 1 >= input.length) return INCOMPLETE;
      if (input[i + 1] !== 0x0a) throw new ProxyHeaderError("PROXY v1 line: CR without LF");
      end = i;
      break;
    }
    // Printable US-ASCII only: anything else cannot be a header, so fail now, not at the cap.
    if (byte < 0x20 || byte > 0x7e) {
      throw new ProxyHeaderError("PROXY v1 line: unexpected control or non-ASCII byte");
    }
  }
  if (end < 0) {
    if (input.length >= MAX_V1_LENGTH) {
      throw new ProxyHeaderError(`PROXY v1 line too long (at most ${MAX_V1_LENGTH} bytes)`);
    }
    return INCOMPLETE;
  }
  const line = new TextDecoder().decode(input.subarray(0, end));
  const length = end + 2;
  const fields = line.split(" ");
  if (fields[1] === "UNKNOWN") {
    // The sender could not tell; whatever follows UNKNOWN is to be ignored.
    const header: ProxyHeader = {
      version: 1,
      command: "proxy",
      family: "unspec",
      source: null,
      destination: null,
      tlvCount: 0,
    };
    return { kind: "complete", header, length };
  }
  if (fields.length !== 6) {
    throw new ProxyHeaderError(`PROXY v1 line: expected 6 fields, got ${fields.length}`);
  }
  const [, protocol, sourceText, destinationText, sourcePort, destinationPort] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (protocol !== "TCP4" && protocol !== "TCP6") {
    throw new ProxyHeaderError("PROXY v1 line: unknown protocol");
  }
  const address = (text: string) => {
    const bytes = parseIpAddress(text);
    if (bytes === null || bytes.length !== (protocol === "TCP4" ? 4 : 16)) {
      throw new ProxyHeaderError(`PROXY v1 line: invalid ${protocol} address`);
    }
    return formatIpAddress(bytes);
  };
  const port = (text: string) => {
    if (!V1_PORT.test(text) || Number(text) > 65535) {
      throw new ProxyHeaderError("PROXY v1 line: invalid port");
    }
    return Number(text);
  };
  const header: ProxyHeader = {
    version: 1,
    command: "proxy",
    family: protocol === "TCP4" ? "inet" : "inet6",
    source: { address: address(sourceText), port: port(sourcePort) },
    destination: { address: address(destinationText), port: port(destinationPort) },
    tlvCount: 0,
  };
  return { kind: "complete", header, length };
}

/** Writes a version 2 header (for tests and benchmarks; the server only reads them). */
export function writeProxyV2(options: {
  readonly command?: "proxy" | "local";
  /** The raw family/transport byte; default from the addresses (inet or inet6, stream). */
  readonly familyByte?: number;
  readonly source?: ProxyEndpoint;
  readonly destination?: ProxyEndpoint;
  /** Address block bytes instead of the ones derived from the endpoints (UNIX, malformed). */
  readonly addressBlock?: Uint8Array;
  readonly tlvs?: readonly { readonly type: number; readonly value: Uint8Array }[];
}): Uint8Array {
  let block = options.addressBlock ?? new Uint8Array(0);
  let familyByte = options.familyByte ?? 0x00;
  if (options.addressBlock === undefined && options.source && options.destination) {
    const source = parseIpAddress(options.source.address)!;
    const destination = parseIpAddress(options.destination.address)!;
    block = new Uint8Array(source.length * 2 + 4);
    block.set(source, 0);
    block.set(destination, source.length);
    const view = new DataView(block.buffer);
    view.setUint16(source.length * 2, options.source.port);
    view.setUint16(source.length * 2 + 2, options.destination.port);
    familyByte = options.familyByte ?? (source.length === 4 ? 0x11 : 0x21);
  }
  const tlvBytes = (options.tlvs ?? []).reduce((n, t) => n + 3 + t.value.length, 0);
  const out = new Uint8Array(16 + block.length + tlvBytes);
  out.set(PROXY_V2_SIGNATURE, 0);
  out[12] = 0x20 | (options.command === "local" ? 0x0 : 0x1);
  out[13] = familyByte;
  const view = new DataView(out.buffer);
  view.setUint16(14, block.length + tlvBytes);
  out.set(block, 16);
  let at = 16 + block.length;
  for (const tlv of options.tlvs ?? []) {
    out[at] = tlv.type;
    view.setUint16(at + 1, tlv.value.length);
    out.set(tlv.value, at + 3);
    at += 3 + tlv.value.length;
  }
  return out;
}
