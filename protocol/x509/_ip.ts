/** IP address text forms for subjectAltName and nameConstraints (RFC 5280, Section 4.2.1.6). */
import { DerError } from "./der.ts";

/** Parses a dotted IPv4 or RFC 4291 IPv6 address into 4 or 16 bytes. */
export function parseIp(text: string): Uint8Array {
  if (text.includes(":")) return parseIpv6(text);
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9][0-9]{0,2})$/.test(p) || +p > 255)) {
    throw new DerError(`Invalid IPv4 address ${text}`);
  }
  return Uint8Array.from(parts.map(Number));
}

function parseIpv6(text: string): Uint8Array {
  let s = text;
  const out = new Uint8Array(16);
  let tail: number[] = [];
  const v4 = /:(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4 !== null) {
    tail = [...parseIp(v4[1]!)];
    s = s.slice(0, v4.index + 1) + "0:0";
  }
  const halves = s.split("::");
  if (halves.length > 2) throw new DerError(`Invalid IPv6 address ${text}`);
  const group = (h: string) => h === "" ? [] : h.split(":");
  const head = group(halves[0]!);
  const rest = halves.length === 2 ? group(halves[1]!) : [];
  const total = head.length + rest.length;
  if ((halves.length === 1 && total !== 8) || (halves.length === 2 && total > 7)) {
    throw new DerError(`Invalid IPv6 address ${text}`);
  }
  const groups = [...head, ...new Array<string>(8 - total).fill("0"), ...rest];
  groups.forEach((g, i) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new DerError(`Invalid IPv6 address ${text}`);
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (tail.length) out.set(tail, 12);
  return out;
}

/** Parses `addr/prefix` into address || mask bytes (8 or 32), as nameConstraints encode it. */
export function parseIpRange(cidr: string): Uint8Array {
  const [addr, prefixText] = cidr.split("/");
  const ip = parseIp(addr ?? "");
  const bits = ip.length * 8;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) {
    throw new DerError(`Invalid IP range ${cidr}`);
  }
  const out = new Uint8Array(ip.length * 2);
  for (let i = 0; i < ip.length; i++) {
    const m = prefix >= (i + 1) * 8
      ? 0xff
      : prefix <= i * 8
      ? 0
      : (0xff << (8 - (prefix - i * 8))) & 0xff;
    out[i] = ip[i]! & m;
    out[ip.length + i] = m;
  }
  return out;
}

/** Text form of a 4- or 16-byte address. */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join(".");
  const groups: string[] = [];
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  }
  return groups.join(":");
}
