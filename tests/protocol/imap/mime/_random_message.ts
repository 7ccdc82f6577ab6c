/**
 * Deterministic generator of well-formed (CRLF, RFC 2045/2046) messages with random structure:
 * nested multiparts, forwarded messages, encodings, RFC 2047 headers, RFC 2231 file names and
 * address groups. Used to widen the Dovecot differential test beyond the hand-written corpus.
 */

/** A small deterministic PRNG (LCG), so every run compares the same messages. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  int(n: number): number {
    this.#s = (Math.imul(this.#s, 1103515245) + 12345) >>> 0;
    return (this.#s >>> 8) % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

const WORDS = ["alpha", "Grüße", "naïve", "日本", "тест", "plain", "x", "déjà", "ok", "€uro"];
const NAMES = ["Alice", "Bob Builder", "Zoë Ölund", '"Smith, J."', "Карл", "(Comment) Eve"];

function b64(s: Uint8Array): string {
  let bin = "";
  for (const b of s) bin += String.fromCharCode(b);
  return btoa(bin).replace(/.{1,76}/g, "$&\r\n").replace(/\r\n$/, "");
}

function encodedWord(r: Rng, text: string): string {
  const bytes = new TextEncoder().encode(text);
  if (r.int(2) === 0) return `=?utf-8?B?${b64(bytes).replace(/\r\n/g, "")}?=`;
  let q = "";
  for (const b of bytes) {
    q += b === 0x20
      ? "_"
      : (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
      ? String.fromCharCode(b)
      : "=" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return `=?UTF-8?Q?${q}?=`;
}

function phrase(r: Rng): string {
  const n = 1 + r.int(4);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(r.pick(WORDS));
  const text = words.join(" ");
  return /^[\x20-\x7e]*$/.test(text) ? text : encodedWord(r, text);
}

function address(r: Rng, i: number): string {
  const mailbox = `user${i}@host${r.int(5)}.example`;
  switch (r.int(4)) {
    case 0:
      return mailbox;
    case 1:
      return `${r.pick(NAMES)} <${mailbox}>`;
    case 2:
      return `${mailbox} (${r.pick(["note", "Home", "x y"])})`;
    default:
      return `${encodedWord(r, r.pick(NAMES))} <${mailbox}>`;
  }
}

function addressList(r: Rng): string {
  if (r.int(6) === 0) return `Team: ${address(r, 1)}, ${address(r, 2)};, ${address(r, 3)}`;
  const n = 1 + r.int(3);
  const list: string[] = [];
  for (let i = 0; i < n; i++) list.push(address(r, i));
  return list.join(",\r\n ");
}

let boundaryCounter = 0;

function leaf(r: Rng): string {
  switch (r.int(5)) {
    case 0:
      return `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` +
        `${phrase(r)} ${r.pick(WORDS)}\r\nsecond line`;
    case 1: {
      const body = new TextEncoder().encode(`<p>${r.pick(WORDS)}</p>\r\n`.repeat(1 + r.int(3)));
      return `Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
        b64(body);
    }
    case 2: {
      const name = `${r.pick(WORDS)}.bin`;
      const encoded = encodeURIComponent(name).replace(/'/g, "%27");
      const bytes = new Uint8Array(10 + r.int(200));
      for (let i = 0; i < bytes.length; i++) bytes[i] = r.int(256);
      return `Content-Type: application/octet-stream\r\n` +
        `Content-Disposition: attachment; filename*=utf-8''${encoded}; size=${bytes.length}\r\n` +
        `Content-Transfer-Encoding: base64\r\n\r\n${b64(bytes)}`;
    }
    case 3:
      return `Content-Type: image/png\r\nContent-ID: <img${r.int(1000)}@example>\r\n` +
        `Content-Description: ${phrase(r)}\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
        b64(new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]));
    default:
      return `Content-Type: text/plain; format=flowed\r\nContent-Transfer-Encoding: ` +
        `quoted-printable\r\nContent-Language: en\r\n\r\nsoft=\r\n break =3D done`;
  }
}

function entity(r: Rng, depth: number): string {
  const kind = depth >= 3 ? 0 : r.int(4);
  if (kind <= 1) return leaf(r);
  if (kind === 2) {
    return `Content-Type: message/rfc822\r\n\r\n${message(r, depth + 1)}`;
  }
  const b = `b${boundaryCounter++}_${r.int(1e6)}`;
  const n = 1 + r.int(3);
  let out = `Content-Type: multipart/${r.pick(["mixed", "alternative", "related"])}; ` +
    `boundary="${b}"\r\n\r\n`;
  if (r.int(2) === 0) out += "preamble text\r\n";
  for (let i = 0; i < n; i++) out += `--${b}\r\n${entity(r, depth + 1)}\r\n`;
  out += `--${b}--`;
  if (r.int(2) === 0) out += "\r\nepilogue\r\n";
  return out;
}

/** A complete message: RFC 5322 header fields followed by a random MIME entity. */
export function message(r: Rng, depth = 0): string {
  let h = `From: ${address(r, 0)}\r\nTo: ${addressList(r)}\r\n`;
  if (r.int(2) === 0) h += `Cc: ${addressList(r)}\r\n`;
  if (r.int(3) === 0) h += `Reply-To: ${address(r, 9)}\r\n`;
  h += `Subject: ${phrase(r)}\r\nDate: ${1 + r.int(28)} Mar 2026 1${r.int(10)}:00:00 +0100\r\n`;
  h += `Message-ID: <${r.int(1e9)}@gen.example>\r\nMIME-Version: 1.0\r\n`;
  return h + entity(r, depth);
}
