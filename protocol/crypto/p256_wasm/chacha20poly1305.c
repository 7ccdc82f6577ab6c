/*
 * ChaCha20-Poly1305 (RFC 8439) for wasm32, for the small records of a TLS handshake: one call
 * seals or opens a record in place in `cc_io`, where node:crypto builds a cipher object and a
 * stream per record. Written from RFC 8439: ChaCha20 (Section 2.3-2.4), Poly1305 with five
 * 26-bit limbs and 64-bit products (Section 2.5), the AEAD construction (Section 2.8).
 * Everything runs in constant time: no branch or index depends on the key, the data or the tag.
 *
 * `cc_io` layout: key (32 bytes) at 0, nonce (12) at 32, additional data (at most CC_MAX_AAD)
 * at 64, then the data (at most CC_MAX_DATA) followed by room for the 16-byte tag.
 */
#include <stdint.h>

typedef uint8_t u8;
typedef uint32_t u32;
typedef uint64_t u64;

#define CC_EXPORT(name) __attribute__((export_name(#name)))
#define CC_INLINE static inline __attribute__((always_inline))

#define CC_MAX_AAD 256
#define CC_MAX_DATA 8192
#define CC_DATA (64 + CC_MAX_AAD)

static u8 cc_io_buf[CC_DATA + CC_MAX_DATA + 16] __attribute__((aligned(16)));

CC_EXPORT(cc_io) u8 *cc_io(void) { return cc_io_buf; }

static void cc_wipe(void *p, int len) {
  volatile u8 *v = (volatile u8 *)p;
  for (int i = 0; i < len; i++) v[i] = 0;
}

CC_INLINE u32 ld32(const u8 *p) {
  return (u32)p[0] | ((u32)p[1] << 8) | ((u32)p[2] << 16) | ((u32)p[3] << 24);
}

CC_INLINE void st32(u8 *p, u32 v) {
  p[0] = (u8)v;
  p[1] = (u8)(v >> 8);
  p[2] = (u8)(v >> 16);
  p[3] = (u8)(v >> 24);
}

CC_INLINE u32 rotl(u32 v, int n) { return (v << n) | (v >> (32 - n)); }

#define QR(a, b, c, d)                                                                             \
  a += b;                                                                                          \
  d = rotl(d ^ a, 16);                                                                             \
  c += d;                                                                                          \
  b = rotl(b ^ c, 12);                                                                             \
  a += b;                                                                                          \
  d = rotl(d ^ a, 8);                                                                              \
  c += d;                                                                                          \
  b = rotl(b ^ c, 7);

/** One ChaCha20 block (RFC 8439, 2.3) of `input` into `out` (16 words). */
static void chacha_block(const u32 input[16], u32 out[16]) {
  u32 x0 = input[0], x1 = input[1], x2 = input[2], x3 = input[3];
  u32 x4 = input[4], x5 = input[5], x6 = input[6], x7 = input[7];
  u32 x8 = input[8], x9 = input[9], x10 = input[10], x11 = input[11];
  u32 x12 = input[12], x13 = input[13], x14 = input[14], x15 = input[15];
  for (int i = 0; i < 10; i++) {
    QR(x0, x4, x8, x12)
    QR(x1, x5, x9, x13)
    QR(x2, x6, x10, x14)
    QR(x3, x7, x11, x15)
    QR(x0, x5, x10, x15)
    QR(x1, x6, x11, x12)
    QR(x2, x7, x8, x13)
    QR(x3, x4, x9, x14)
  }
  out[0] = x0 + input[0];
  out[1] = x1 + input[1];
  out[2] = x2 + input[2];
  out[3] = x3 + input[3];
  out[4] = x4 + input[4];
  out[5] = x5 + input[5];
  out[6] = x6 + input[6];
  out[7] = x7 + input[7];
  out[8] = x8 + input[8];
  out[9] = x9 + input[9];
  out[10] = x10 + input[10];
  out[11] = x11 + input[11];
  out[12] = x12 + input[12];
  out[13] = x13 + input[13];
  out[14] = x14 + input[14];
  out[15] = x15 + input[15];
}

/** XORs `len` bytes at `data` with the key stream from block counter 1 (RFC 8439, 2.4). */
static void chacha_xor(u32 state[16], u8 *data, u32 len) {
  u32 ks[16];
  u8 block[64];
  state[12] = 1;
  while (len > 0) {
    chacha_block(state, ks);
    state[12]++;
    u32 n = len < 64 ? len : 64;
    if (n == 64) {
      for (int i = 0; i < 16; i++) st32(data + 4 * i, ld32(data + 4 * i) ^ ks[i]);
    } else {
      for (int i = 0; i < 16; i++) st32(block + 4 * i, ks[i]);
      for (u32 i = 0; i < n; i++) data[i] ^= block[i];
    }
    data += n;
    len -= n;
  }
  cc_wipe(ks, sizeof ks);
  cc_wipe(block, sizeof block);
}

typedef struct {
  u32 r[5], s[4], h[5], pad[4];
} poly1305;

static void poly_init(poly1305 *p, const u8 key[32]) {
  p->r[0] = ld32(key) & 0x3ffffff;
  p->r[1] = (ld32(key + 3) >> 2) & 0x3ffff03;
  p->r[2] = (ld32(key + 6) >> 4) & 0x3ffc0ff;
  p->r[3] = (ld32(key + 9) >> 6) & 0x3f03fff;
  p->r[4] = (ld32(key + 12) >> 8) & 0x00fffff;
  for (int i = 0; i < 4; i++) p->s[i] = p->r[i + 1] * 5;
  for (int i = 0; i < 5; i++) p->h[i] = 0;
  for (int i = 0; i < 4; i++) p->pad[i] = ld32(key + 16 + 4 * i);
}

/** Absorbs `len` bytes as 16-byte blocks; a short last block is zero-padded (the AEAD pads). */
static void poly_blocks(poly1305 *p, const u8 *m, u32 len) {
  const u32 r0 = p->r[0], r1 = p->r[1], r2 = p->r[2], r3 = p->r[3], r4 = p->r[4];
  const u32 s1 = p->s[0], s2 = p->s[1], s3 = p->s[2], s4 = p->s[3];
  u32 h0 = p->h[0], h1 = p->h[1], h2 = p->h[2], h3 = p->h[3], h4 = p->h[4];
  u8 last[16];
  while (len > 0) {
    const u8 *b = m;
    if (len < 16) {
      for (u32 i = 0; i < 16; i++) last[i] = i < len ? m[i] : 0;
      b = last;
    }
    h0 += ld32(b) & 0x3ffffff;
    h1 += (ld32(b + 3) >> 2) & 0x3ffffff;
    h2 += (ld32(b + 6) >> 4) & 0x3ffffff;
    h3 += (ld32(b + 9) >> 6) & 0x3ffffff;
    h4 += (ld32(b + 12) >> 8) | (1u << 24);
    u64 d0 = (u64)h0 * r0 + (u64)h1 * s4 + (u64)h2 * s3 + (u64)h3 * s2 + (u64)h4 * s1;
    u64 d1 = (u64)h0 * r1 + (u64)h1 * r0 + (u64)h2 * s4 + (u64)h3 * s3 + (u64)h4 * s2;
    u64 d2 = (u64)h0 * r2 + (u64)h1 * r1 + (u64)h2 * r0 + (u64)h3 * s4 + (u64)h4 * s3;
    u64 d3 = (u64)h0 * r3 + (u64)h1 * r2 + (u64)h2 * r1 + (u64)h3 * r0 + (u64)h4 * s4;
    u64 d4 = (u64)h0 * r4 + (u64)h1 * r3 + (u64)h2 * r2 + (u64)h3 * r1 + (u64)h4 * r0;
    u32 c = (u32)(d0 >> 26);
    h0 = (u32)d0 & 0x3ffffff;
    d1 += c;
    c = (u32)(d1 >> 26);
    h1 = (u32)d1 & 0x3ffffff;
    d2 += c;
    c = (u32)(d2 >> 26);
    h2 = (u32)d2 & 0x3ffffff;
    d3 += c;
    c = (u32)(d3 >> 26);
    h3 = (u32)d3 & 0x3ffffff;
    d4 += c;
    c = (u32)(d4 >> 26);
    h4 = (u32)d4 & 0x3ffffff;
    h0 += c * 5;
    c = h0 >> 26;
    h0 &= 0x3ffffff;
    h1 += c;
    if (len < 16) break;
    m += 16;
    len -= 16;
  }
  p->h[0] = h0;
  p->h[1] = h1;
  p->h[2] = h2;
  p->h[3] = h3;
  p->h[4] = h4;
  cc_wipe(last, sizeof last);
}

/** The tag: h fully reduced mod 2^130 - 5, plus the pad, mod 2^128 (RFC 8439, 2.5.1). */
static void poly_finish(poly1305 *p, u8 tag[16]) {
  u32 h0 = p->h[0], h1 = p->h[1], h2 = p->h[2], h3 = p->h[3], h4 = p->h[4];
  u32 c = h1 >> 26;
  h1 &= 0x3ffffff;
  h2 += c;
  c = h2 >> 26;
  h2 &= 0x3ffffff;
  h3 += c;
  c = h3 >> 26;
  h3 &= 0x3ffffff;
  h4 += c;
  c = h4 >> 26;
  h4 &= 0x3ffffff;
  h0 += c * 5;
  c = h0 >> 26;
  h0 &= 0x3ffffff;
  h1 += c;
  // g = h + 5 - 2^130; keep g when it does not go negative.
  u32 g0 = h0 + 5;
  c = g0 >> 26;
  g0 &= 0x3ffffff;
  u32 g1 = h1 + c;
  c = g1 >> 26;
  g1 &= 0x3ffffff;
  u32 g2 = h2 + c;
  c = g2 >> 26;
  g2 &= 0x3ffffff;
  u32 g3 = h3 + c;
  c = g3 >> 26;
  g3 &= 0x3ffffff;
  u32 g4 = h4 + c - (1u << 26);
  u32 mask = (g4 >> 31) - 1; // all ones when g4 did not borrow
  h0 = (h0 & ~mask) | (g0 & mask);
  h1 = (h1 & ~mask) | (g1 & mask);
  h2 = (h2 & ~mask) | (g2 & mask);
  h3 = (h3 & ~mask) | (g3 & mask);
  h4 = (h4 & ~mask) | (g4 & mask);
  u32 w0 = h0 | (h1 << 26);
  u32 w1 = (h1 >> 6) | (h2 << 20);
  u32 w2 = (h2 >> 12) | (h3 << 14);
  u32 w3 = (h3 >> 18) | (h4 << 8);
  u64 f = (u64)w0 + p->pad[0];
  st32(tag, (u32)f);
  f = (u64)w1 + p->pad[1] + (f >> 32);
  st32(tag + 4, (u32)f);
  f = (u64)w2 + p->pad[2] + (f >> 32);
  st32(tag + 8, (u32)f);
  f = (u64)w3 + p->pad[3] + (f >> 32);
  st32(tag + 12, (u32)f);
  cc_wipe(p, sizeof *p);
}

/** The ChaCha20 state for the key and nonce in `cc_io`, and the Poly1305 key (block 0). */
static void cc_setup(u32 state[16], poly1305 *p) {
  state[0] = 0x61707865;
  state[1] = 0x3320646e;
  state[2] = 0x79622d32;
  state[3] = 0x6b206574;
  for (int i = 0; i < 8; i++) state[4 + i] = ld32(cc_io_buf + 4 * i);
  state[12] = 0;
  for (int i = 0; i < 3; i++) state[13 + i] = ld32(cc_io_buf + 32 + 4 * i);
  u32 block[16];
  u8 key[32];
  chacha_block(state, block);
  for (int i = 0; i < 8; i++) st32(key + 4 * i, block[i]);
  poly_init(p, key);
  cc_wipe(block, sizeof block);
  cc_wipe(key, sizeof key);
}

/** The tag over the additional data and the ciphertext (RFC 8439, 2.8). */
static void cc_tag(poly1305 *p, u32 aad_len, const u8 *ct, u32 ct_len, u8 tag[16]) {
  u8 lengths[16];
  poly_blocks(p, cc_io_buf + 64, aad_len);
  poly_blocks(p, ct, ct_len);
  st32(lengths, aad_len);
  st32(lengths + 4, 0);
  st32(lengths + 8, ct_len);
  st32(lengths + 12, 0);
  poly_blocks(p, lengths, 16);
  poly_finish(p, tag);
}

/**
 * Seals `len` bytes at CC_DATA in place and writes the tag after them. Returns 0 when a length
 * is out of range. The key and nonce are wiped.
 */
CC_EXPORT(cc_seal) int cc_seal(u32 aad_len, u32 len) {
  if (aad_len > CC_MAX_AAD || len > CC_MAX_DATA) return 0;
  u32 state[16];
  poly1305 p;
  u8 *data = cc_io_buf + CC_DATA;
  cc_setup(state, &p);
  chacha_xor(state, data, len);
  cc_tag(&p, aad_len, data, len, data + len);
  cc_wipe(state, sizeof state);
  cc_wipe(cc_io_buf, 44);
  return 1;
}

/**
 * Opens `len` bytes (ciphertext and tag) at CC_DATA in place. Returns 1 and leaves the plaintext
 * there when the tag verifies; otherwise returns 0 and decrypts nothing. The key and nonce are
 * wiped.
 */
CC_EXPORT(cc_open) int cc_open(u32 aad_len, u32 len) {
  if (aad_len > CC_MAX_AAD || len < 16 || len > CC_MAX_DATA + 16) return 0;
  u32 state[16];
  poly1305 p;
  u8 tag[16];
  u8 *data = cc_io_buf + CC_DATA;
  u32 ct_len = len - 16;
  cc_setup(state, &p);
  cc_tag(&p, aad_len, data, ct_len, tag);
  u32 diff = 0;
  for (int i = 0; i < 16; i++) diff |= (u32)(tag[i] ^ data[ct_len + i]);
  // 1 when diff is zero, without a branch on it.
  u32 ok = ((diff - 1) >> 31) & 1;
  if (ok) chacha_xor(state, data, ct_len);
  cc_wipe(state, sizeof state);
  cc_wipe(tag, sizeof tag);
  cc_wipe(cc_io_buf, 44);
  return (int)ok;
}
