/** A small reader for IMAP response data (RFC 9051, Section 4), used to compare structures. */

export type Sexp = string | null | Sexp[];

const decoder = new TextDecoder();

/** Reads every top-level value in `bytes` (atoms, NIL, quoted strings, literals, lists). */
export function readSexps(bytes: Uint8Array): Sexp[] {
  let i = 0;
  const ws = (): void => {
    while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0d || bytes[i] === 0x0a)) i++;
  };
  const value = (): Sexp => {
    ws();
    const c = bytes[i];
    if (c === 0x28) {
      i++;
      const list: Sexp[] = [];
      for (;;) {
        ws();
        if (i >= bytes.length) throw new Error("Unterminated list");
        if (bytes[i] === 0x29) {
          i++;
          return list;
        }
        list.push(value());
      }
    }
    if (c === 0x22) {
      i++;
      const out: number[] = [];
      while (i < bytes.length && bytes[i] !== 0x22) {
        if (bytes[i] === 0x5c) i++;
        out.push(bytes[i++]!);
      }
      i++;
      return decoder.decode(new Uint8Array(out));
    }
    if (c === 0x7b) {
      const close = bytes.indexOf(0x7d, i);
      const n = Number(decoder.decode(bytes.subarray(i + 1, close)));
      i = close + 1;
      if (bytes[i] === 0x0d) i++;
      if (bytes[i] === 0x0a) i++;
      const s = decoder.decode(bytes.subarray(i, i + n));
      i += n;
      return s;
    }
    const start = i;
    while (i < bytes.length && ![0x20, 0x28, 0x29, 0x0d, 0x0a].includes(bytes[i]!)) i++;
    if (i === start) throw new Error(`Unexpected byte ${c} at ${i}`);
    const atom = decoder.decode(bytes.subarray(start, i));
    return atom.toUpperCase() === "NIL" ? null : atom;
  };
  const out: Sexp[] = [];
  ws();
  while (i < bytes.length) {
    out.push(value());
    ws();
  }
  return out;
}

/** Reads one value from a string (literal lengths count UTF-8 octets). */
export function readSexp(s: string): Sexp {
  return readSexps(new TextEncoder().encode(s))[0] ?? null;
}

/** Turns an untagged FETCH response (`n (KEY value ...)`) into a key → value map. */
export function fetchItems(bytes: Uint8Array): Map<string, Sexp> {
  const all = readSexps(bytes);
  const list = all[1];
  const out = new Map<string, Sexp>();
  if (!Array.isArray(list)) return out;
  for (let k = 0; k + 1 < list.length; k += 2) {
    out.set(String(list[k]).toUpperCase(), list[k + 1]!);
  }
  return out;
}
