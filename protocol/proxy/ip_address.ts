/**
 * IP address text forms (RFC 4291, Section 2.2; RFC 5952) and CIDR ranges (RFC 4632), for the
 * PROXY protocol's addresses and the `trusted_proxies` of a listener.
 */

/** An address range: the network bytes (4 or 16) and the prefix length in bits. */
export interface Cidr {
  readonly network: Uint8Array;
  readonly prefix: number;
}

const IPV4_PART = /^(0|[1-9][0-9]{0,2})$/;
const IPV6_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Parses dotted IPv4 or IPv6 text into 4 or 16 bytes; null when it is neither. */
export function parseIpAddress(text: string): Uint8Array | null {
  if (text.length === 0 || text.length > 45) return null;
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    if (!IPV4_PART.test(part) || Number(part) > 255) return null;
    out[i] = Number(part);
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | null {
  let s = text;
  let tail: Uint8Array | null = null;
  const dotted = /:(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted !== null) {
    tail = parseIpv4(dotted[1]!);
    if (tail === null) return null;
    s = `${s.slice(0, dotted.index + 1)}0:0`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (half: string) => half === "" ? [] : half.split(":");
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const count = head.length + rest.length;
  if (halves.length === 1 ? count !== 8 : count > 7) return null;
  const all = [...head, ...new Array<string>(8 - count).fill("0"), ...rest];
  const out = new Uint8Array(16);
  for (const [i, group] of all.entries()) {
    if (!IPV6_GROUP.test(group)) return null;
    const value = parseInt(group, 16);
    out[i * 2] = value >> 8;
    out[i * 2 + 1] = value & 0xff;
  }
  if (tail !== null) out.set(tail, 12);
  return out;
}

/** An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, RFC 4291, Section 2.5.5.2) as 4 bytes. */
export function unmapIpv4(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== 16) return bytes;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return bytes;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return bytes;
  return bytes.subarray(12);
}

/**
 * The canonical text of 4 or 16 bytes: dotted IPv4, or RFC 5952 IPv6 (lower case, the longest
 * run of two or more zero groups as `::`). IPv4-mapped addresses come out as plain IPv4, the way
 * the socket layer reports an IPv4 peer, so that one client has one text form.
 */
export function formatIpAddress(bytes: Uint8Array): string {
  const address = unmapIpv4(bytes);
  if (address.length === 4) return address.join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((address[i]! << 8) | address[i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** Parses `192.0.2.0/24`, `2001:db8::/32`, or a single address (a full-length prefix). */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  const address = parseIpAddress(slash < 0 ? text : text.slice(0, slash));
  if (address === null) return null;
  const bits = address.length * 8;
  let prefix = bits;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return null;
    prefix = Number(prefixText);
    if (prefix > bits) return null;
  }
  const network = address.slice();
  for (let i = 0; i < network.length; i++) network[i]! &= maskByte(prefix, i);
  return { network, prefix };
}

function maskByte(prefix: number, index: number): number {
  const bits = prefix - index * 8;
  if (bits >= 8) return 0xff;
  if (bits <= 0) return 0;
  return (0xff << (8 - bits)) & 0xff;
}

/**
 * Whether `address` (4 or 16 bytes) lies in one of `ranges`. An IPv4-mapped IPv6 address is
 * matched as the IPv4 address it carries.
 */
export function inRanges(address: Uint8Array, ranges: readonly Cidr[]): boolean {
  const bytes = unmapIpv4(address);
  return ranges.some(({ network, prefix }) => {
    if (network.length !== bytes.length) return false;
    for (let i = 0; i < network.length; i++) {
      if ((bytes[i]! & maskByte(prefix, i)) !== network[i]) return false;
    }
    return true;
  });
}
