/**
 * PEM text encoding (RFC 7468): base64 between `-----BEGIN label-----` and
 * `-----END label-----`. Text outside blocks is ignored, as RFC 7468 allows; anything but
 * base64 inside a block is rejected (including RFC 1421 headers of encrypted legacy keys).
 */

/** A malformed PEM document. */
export class PemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PemError";
  }
}

/** One decoded PEM block. */
export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

/** Largest PEM text accepted (a big CA bundle is a few hundred KiB). */
export const MAX_PEM_LENGTH = 8 << 20;

const BEGIN = /^-----BEGIN ([A-Z0-9 ]*)-----$/;
const END = /^-----END ([A-Z0-9 ]*)-----$/;
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes every PEM block in `text`, in order. */
export function decodePem(text: string): PemBlock[] {
  if (text.length > MAX_PEM_LENGTH) throw new PemError("PEM text too large");
  const blocks: PemBlock[] = [];
  const lines = text.split(/\r?\n/);
  let label: string | undefined;
  let body: string[] = [];
  for (const rawLine of lines) {
    const line = rawLine.trim();
    if (label === undefined) {
      const m = BEGIN.exec(line);
      if (m !== null) {
        label = m[1]!;
        body = [];
      } else if (line.startsWith("-----END")) {
        throw new PemError("PEM END line without BEGIN");
      }
      continue;
    }
    const end = END.exec(line);
    if (end !== null) {
      if (end[1] !== label) throw new PemError(`PEM END label does not match BEGIN ${label}`);
      blocks.push({ label, der: decodeBase64(body.join("")) });
      label = undefined;
      continue;
    }
    if (line.includes(":")) throw new PemError("Encrypted or annotated PEM is not supported");
    if (!BASE64_LINE.test(line)) throw new PemError(`Invalid character inside PEM ${label}`);
    body.push(line);
  }
  if (label !== undefined) throw new PemError(`PEM block ${label} has no END line`);
  return blocks;
}

/** Decodes the single block labelled `label` (or one of `labels`); rejects none or several. */
export function decodePemOne(text: string, labels: string | readonly string[]): PemBlock {
  const wanted = typeof labels === "string" ? [labels] : labels;
  const found = decodePem(text).filter((b) => wanted.includes(b.label));
  if (found.length === 0) throw new PemError(`No PEM block labelled ${wanted.join(" or ")}`);
  if (found.length > 1) throw new PemError(`Several PEM blocks labelled ${wanted.join(" or ")}`);
  return found[0]!;
}

/** Encodes DER as a PEM block with 64-character lines. */
export function encodePem(label: string, der: Uint8Array): string {
  if (!/^[A-Z0-9 ]+$/.test(label)) throw new PemError("Invalid PEM label");
  const b64 = encodeBase64(der);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}${
    lines.length ? "\n" : ""
  }-----END ${label}-----\n`;
}

function decodeBase64(s: string): Uint8Array {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    throw new PemError("Invalid base64 in PEM");
  }
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw new PemError("Invalid base64 in PEM");
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Standard base64 of bytes. */
export function encodeBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}
