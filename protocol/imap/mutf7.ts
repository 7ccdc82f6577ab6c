/**
 * Modified UTF-7 for mailbox names (RFC 3501, Section 5.1.3), used with IMAP4rev1 clients.
 * Printable ASCII stands for itself except `&`, written `&-`; other characters are UTF-16 in
 * modified base64 (`,` for `/`, no padding) between `&` and `-`.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/** Raised when a name is not valid modified UTF-7. */
export class Mutf7Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Mutf7Error";
  }
}

function encodeRun(units: number[]): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const unit of units) {
    value = (value << 16) | unit;
    bits += 16;
    while (bits >= 6) {
      bits -= 6;
      out += ALPHABET[(value >> bits) & 0x3f];
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(value << (6 - bits)) & 0x3f];
  return out;
}

/** Encodes a UTF-8 (JavaScript) mailbox name as modified UTF-7. */
export function encodeMutf7(name: string): string {
  let out = "";
  let run: number[] = [];
  const flush = () => {
    if (run.length > 0) out += "&" + encodeRun(run) + "-";
    run = [];
  };
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i);
    if (unit >= 0x20 && unit <= 0x7e) {
      flush();
      out += unit === 0x26 ? "&-" : name[i];
    } else {
      run.push(unit);
    }
  }
  flush();
  return out;
}

/** Decodes a modified UTF-7 mailbox name; throws `Mutf7Error` on malformed input. */
export function decodeMutf7(name: string): string {
  let out = "";
  let i = 0;
  while (i < name.length) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new Mutf7Error("Mailbox name has a non-ASCII character");
    if (c !== 0x26) {
      out += name[i++];
      continue;
    }
    const end = name.indexOf("-", i + 1);
    if (end < 0) throw new Mutf7Error("Unterminated modified base64 in mailbox name");
    if (end === i + 1) {
      out += "&";
      i = end + 1;
      continue;
    }
    let bits = 0;
    let value = 0;
    const units: number[] = [];
    for (let k = i + 1; k < end; k++) {
      const v = ALPHABET.indexOf(name[k]!);
      if (v < 0) throw new Mutf7Error("Invalid modified base64 in mailbox name");
      value = (value << 6) | v;
      bits += 6;
      if (bits >= 16) {
        bits -= 16;
        units.push((value >> bits) & 0xffff);
        value &= (1 << bits) - 1;
      }
    }
    // Leftover bits must be zero padding shorter than one base64 digit group.
    if (bits >= 6 || value !== 0) throw new Mutf7Error("Invalid modified base64 padding");
    if (units.length === 0) throw new Mutf7Error("Empty modified base64 run");
    const text = String.fromCharCode(...units);
    for (const unit of units) {
      if (unit >= 0x20 && unit <= 0x7e) {
        throw new Mutf7Error("Printable ASCII must not be base64-encoded in mailbox names");
      }
    }
    if (!text.isWellFormed()) throw new Mutf7Error("Unpaired surrogate in mailbox name");
    out += text;
    i = end + 1;
  }
  return out;
}
