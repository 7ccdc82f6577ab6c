/**
 * Writes PKCS#12 files (RFC 7292) holding a certificate chain and its private key, so users
 * can import a client certificate into a mail client. The key is shrouded with PBES2
 * (PBKDF2-HMAC-SHA256, AES-256-CBC; RFC 8018), the certificates are stored in plain data
 * content, and the whole is protected by an HMAC-SHA256 MAC keyed with the PKCS#12 KDF
 * (RFC 7292, Appendix B). PBKDF2 and AES-CBC come from noble because the crypto provider
 * has no use for them in TLS.
 */
import { cbc } from "@noble/ciphers/aes.js";
import { pbkdf2 } from "@noble/hashes/pbkdf2.js";
import { sha256 } from "@noble/hashes/sha2.js";
import type { CryptoProvider, PrivateKey } from "../crypto/provider.ts";
import { DerWriter, Tag } from "./der.ts";
import { encodePrivateKeyPkcs8 } from "./keys.ts";
import { Oid } from "./oid.ts";

/** Options of `encodePkcs12`. */
export interface Pkcs12Options {
  /** Leaf first; the leaf is the one matching `key`. */
  readonly certificates: readonly Uint8Array[];
  readonly key: PrivateKey;
  readonly password: string;
  /** Shown by clients when importing. */
  readonly friendlyName?: string;
  /** PBKDF2 and MAC iteration count. Default 10000. */
  readonly iterations?: number;
}

/** The BMPString form of a password with its two-byte terminator (RFC 7292, Appendix B.1). */
function bmpPassword(password: string): Uint8Array {
  const out = new Uint8Array(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) {
    const c = password.charCodeAt(i);
    out[i * 2] = c >> 8;
    out[i * 2 + 1] = c & 0xff;
  }
  return out;
}

function repeatTo(src: Uint8Array, v: number): Uint8Array {
  if (src.length === 0) return new Uint8Array(0);
  const out = new Uint8Array(v * Math.ceil(src.length / v));
  for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
  return out;
}

/** The PKCS#12 key derivation function with SHA-256 (RFC 7292, Appendix B.2). */
export function pkcs12Kdf(
  provider: CryptoProvider,
  id: 1 | 2 | 3,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Uint8Array {
  const u = 32;
  const v = 64;
  const d = new Uint8Array(v).fill(id);
  const s = repeatTo(salt, v);
  const p = repeatTo(password, v);
  const i = new Uint8Array(s.length + p.length);
  i.set(s);
  i.set(p, s.length);
  const out = new Uint8Array(Math.ceil(length / u) * u);
  for (let block = 0; block * u < length; block++) {
    const first = new Uint8Array(v + i.length);
    first.set(d);
    first.set(i, v);
    let a = provider.hash("SHA-256", first);
    for (let r = 1; r < iterations; r++) a = provider.hash("SHA-256", a);
    out.set(a, block * u);
    const b = repeatTo(a, v);
    for (let j = 0; j < i.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = i[j + k]! + b[k]! + carry;
        i[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return out.subarray(0, length);
}

/** localKeyId pairs the key with its certificate; friendlyName is a BMPString (RFC 2985). */
function bagAttributes(w: DerWriter, localKeyId: Uint8Array, friendlyName?: string): void {
  w.setOf((set) => {
    set.sequence((a) => {
      a.oid(Oid.localKeyId);
      a.setOf((v) => v.octetString(localKeyId));
    });
    if (friendlyName !== undefined) {
      set.sequence((a) => {
        a.oid(Oid.friendlyName);
        a.setOf((v) => v.tlv(Tag.BMP_STRING, bmpPassword(friendlyName).subarray(0, -2)));
      });
    }
  });
}

function dataContentInfo(w: DerWriter, content: Uint8Array): void {
  w.sequence((ci) => {
    ci.oid(Oid.pkcs7Data);
    ci.explicit(0, (e) => e.octetString(content));
  });
}

/** Encodes a password-protected PKCS#12 file (DER). */
export function encodePkcs12(options: Pkcs12Options, provider: CryptoProvider): Uint8Array {
  const iterations = options.iterations ?? 10000;
  const leaf = options.certificates[0];
  if (leaf === undefined) throw new RangeError("A PKCS#12 file needs a certificate");
  const localKeyId = provider.hash("SHA-256", leaf).subarray(0, 20);
  const passwordUtf8 = new TextEncoder().encode(options.password);

  // The shrouded key bag: EncryptedPrivateKeyInfo with PBES2 (RFC 8018, Section 6.2).
  const salt = provider.randomBytes(16);
  const iv = provider.randomBytes(16);
  const kek = pbkdf2(sha256, passwordUtf8, salt, { c: iterations, dkLen: 32 });
  const encrypted = cbc(kek, iv).encrypt(encodePrivateKeyPkcs8(options.key));
  const keyBag = new DerWriter().sequence((bags) => {
    bags.sequence((bag) => {
      bag.oid(Oid.pkcs12ShroudedKeyBag);
      bag.explicit(0, (e) =>
        e.sequence((epki) => {
          epki.sequence((alg) => {
            alg.oid(Oid.pbes2);
            alg.sequence((params) => {
              params.sequence((kdf) => {
                kdf.oid(Oid.pbkdf2);
                kdf.sequence((p) => {
                  p.octetString(salt);
                  p.integer(iterations);
                  p.integer(32);
                  p.sequence((prf) => prf.oid(Oid.hmacWithSha256).null());
                });
              });
              params.sequence((enc) => enc.oid(Oid.aes256Cbc).octetString(iv));
            });
          });
          epki.octetString(encrypted);
        }));
      bagAttributes(bag, localKeyId, options.friendlyName);
    });
  }).bytes();

  const certBags = new DerWriter().sequence((bags) => {
    options.certificates.forEach((cert, index) => {
      bags.sequence((bag) => {
        bag.oid(Oid.pkcs12CertBag);
        bag.explicit(0, (e) =>
          e.sequence((cb) => {
            cb.oid(Oid.x509Certificate);
            cb.explicit(0, (v) => v.octetString(cert));
          }));
        if (index === 0) bagAttributes(bag, localKeyId, options.friendlyName);
      });
    });
  }).bytes();

  const authSafe = new DerWriter().sequence((s) => {
    dataContentInfo(s, certBags);
    dataContentInfo(s, keyBag);
  }).bytes();

  // MacData (RFC 7292, Section 4; Appendix B.4 for the MAC key).
  const macSalt = provider.randomBytes(16);
  const macKey = pkcs12Kdf(provider, 3, bmpPassword(options.password), macSalt, iterations, 32);
  const mac = provider.hmac("SHA-256", macKey, authSafe);

  return new DerWriter().sequence((pfx) => {
    pfx.integer(3);
    dataContentInfo(pfx, authSafe);
    pfx.sequence((md) => {
      md.sequence((di) => {
        di.sequence((alg) => alg.oid(Oid.sha256).null());
        di.octetString(mac);
      });
      md.octetString(macSalt);
      md.integer(iterations);
    });
  }).bytes();
}
