/*
 * HMAC-SHA-384 (RFC 2104 over FIPS 180-4 SHA-384) for wasm32, for the short inputs of the
 * SHA-384 key schedules (TLS 1.3 HKDF with TLS_AES_256_GCM_SHA384, the TLS 1.2 PRF of the
 * *_SHA384 suites). JavaScript has no 64-bit integers to compute SHA-512's rounds in, so a
 * general-purpose HMAC-SHA-384 there costs 8-10 us per MAC; here the rounds run on native i64.
 * Written from FIPS 180-4 (Sections 4.1.3, 4.2.3, 5.3.4, 6.4) and RFC 2104. No branch or index
 * depends on the key or the message.
 *
 * `h384_io` layout: the key (at most 128 bytes) at 0, the MAC out (48 bytes) at 128, the message
 * (at most H384_MAX_DATA bytes) at 176. The hash states after a key's inner and outer pad blocks
 * are kept for the last H384_SLOTS keys: a key schedule expands most secrets several times in a
 * row.
 */
#include <stdint.h>

typedef uint8_t u8;
typedef uint64_t u64;

#define H384_EXPORT(name) __attribute__((export_name(#name)))

#define H384_MAX_DATA 1024
#define H384_SLOTS 4
#define H384_MAC 128
#define H384_DATA 176

static u8 h384_io_buf[H384_DATA + H384_MAX_DATA] __attribute__((aligned(16)));

H384_EXPORT(h384_io) u8 *h384_io(void) { return h384_io_buf; }

static void h384_wipe(void *p, int len) {
  volatile u8 *v = (volatile u8 *)p;
  for (int i = 0; i < len; i++) v[i] = 0;
}

static const u64 K512[80] = {
    0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full, 0xe9b5dba58189dbbcull,
    0x3956c25bf348b538ull, 0x59f111f1b605d019ull, 0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull,
    0xd807aa98a3030242ull, 0x12835b0145706fbeull, 0x243185be4ee4b28cull, 0x550c7dc3d5ffb4e2ull,
    0x72be5d74f27b896full, 0x80deb1fe3b1696b1ull, 0x9bdc06a725c71235ull, 0xc19bf174cf692694ull,
    0xe49b69c19ef14ad2ull, 0xefbe4786384f25e3ull, 0x0fc19dc68b8cd5b5ull, 0x240ca1cc77ac9c65ull,
    0x2de92c6f592b0275ull, 0x4a7484aa6ea6e483ull, 0x5cb0a9dcbd41fbd4ull, 0x76f988da831153b5ull,
    0x983e5152ee66dfabull, 0xa831c66d2db43210ull, 0xb00327c898fb213full, 0xbf597fc7beef0ee4ull,
    0xc6e00bf33da88fc2ull, 0xd5a79147930aa725ull, 0x06ca6351e003826full, 0x142929670a0e6e70ull,
    0x27b70a8546d22ffcull, 0x2e1b21385c26c926ull, 0x4d2c6dfc5ac42aedull, 0x53380d139d95b3dfull,
    0x650a73548baf63deull, 0x766a0abb3c77b2a8ull, 0x81c2c92e47edaee6ull, 0x92722c851482353bull,
    0xa2bfe8a14cf10364ull, 0xa81a664bbc423001ull, 0xc24b8b70d0f89791ull, 0xc76c51a30654be30ull,
    0xd192e819d6ef5218ull, 0xd69906245565a910ull, 0xf40e35855771202aull, 0x106aa07032bbd1b8ull,
    0x19a4c116b8d2d0c8ull, 0x1e376c085141ab53ull, 0x2748774cdf8eeb99ull, 0x34b0bcb5e19b48a8ull,
    0x391c0cb3c5c95a63ull, 0x4ed8aa4ae3418acbull, 0x5b9cca4f7763e373ull, 0x682e6ff3d6b2b8a3ull,
    0x748f82ee5defb2fcull, 0x78a5636f43172f60ull, 0x84c87814a1f0ab72ull, 0x8cc702081a6439ecull,
    0x90befffa23631e28ull, 0xa4506cebde82bde9ull, 0xbef9a3f7b2c67915ull, 0xc67178f2e372532bull,
    0xca273eceea26619cull, 0xd186b8c721c0c207ull, 0xeada7dd6cde0eb1eull, 0xf57d4f7fee6ed178ull,
    0x06f067aa72176fbaull, 0x0a637dc5a2c898a6ull, 0x113f9804bef90daeull, 0x1b710b35131c471bull,
    0x28db77f523047d84ull, 0x32caab7b40c72493ull, 0x3c9ebe0a15c9bebcull, 0x431d67c49c100d4cull,
    0x4cc5d4becb3e42b6ull, 0x597f299cfc657e2aull, 0x5fcb6fab3ad6faecull, 0x6c44198c4a475817ull,
};

/* SHA-384's initial hash value (FIPS 180-4, Section 5.3.4). */
static const u64 IV384[8] = {
    0xcbbb9d5dc1059ed8ull, 0x629a292a367cd507ull, 0x9159015a3070dd17ull, 0x152fecd8f70e5939ull,
    0x67332667ffc00b31ull, 0x8eb44a8768581511ull, 0xdb0c2e0d64f98fa7ull, 0x47b5481dbefa4fa4ull,
};

static inline u64 rotr64(u64 x, int n) { return (x >> n) | (x << (64 - n)); }

static inline u64 ld64be(const u8 *p) {
  u64 v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}

/* One SHA-512 compression of the 128-byte block m into h (FIPS 180-4, Section 6.4.2). */
static void sha512_compress(u64 h[8], const u8 *m) {
  u64 w[80];
  for (int t = 0; t < 16; t++) w[t] = ld64be(m + 8 * t);
  for (int t = 16; t < 80; t++) {
    u64 s0 = rotr64(w[t - 15], 1) ^ rotr64(w[t - 15], 8) ^ (w[t - 15] >> 7);
    u64 s1 = rotr64(w[t - 2], 19) ^ rotr64(w[t - 2], 61) ^ (w[t - 2] >> 6);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  u64 a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int t = 0; t < 80; t++) {
    u64 t1 = hh + (rotr64(e, 14) ^ rotr64(e, 18) ^ rotr64(e, 41)) + ((e & f) ^ (~e & g)) +
             K512[t] + w[t];
    u64 t2 = (rotr64(a, 28) ^ rotr64(a, 34) ^ rotr64(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
  h384_wipe(w, sizeof w);
}

/*
 * Finishes a hash whose state h has taken `prefix` bytes (whole blocks) with the len < 128 bytes
 * of msg, and writes the 48-byte SHA-384 digest to out (which may alias msg). h is consumed.
 */
static void sha384_tail(u8 out[48], u64 h[8], const u8 *msg, int len, u64 prefix) {
  u8 block[256];
  for (int i = 0; i < 256; i++) block[i] = 0;
  for (int i = 0; i < len; i++) block[i] = msg[i];
  block[len] = 0x80;
  /* The 128-bit length field: inputs here stay far below 2^64 bits, so its high half is 0. */
  int blocks = len + 17 <= 128 ? 1 : 2;
  u64 bits = (prefix + (u64)len) * 8;
  u8 *end = block + 128 * blocks;
  for (int i = 0; i < 8; i++) end[-1 - i] = (u8)(bits >> (8 * i));
  for (int i = 0; i < blocks; i++) sha512_compress(h, block + 128 * i);
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < 8; j++) out[8 * i + j] = (u8)(h[i] >> (56 - 8 * j));
  }
  h384_wipe(block, sizeof block);
}

/* A key as the hash states after its inner and outer pad blocks (RFC 2104). */
typedef struct {
  u64 inner[8], outer[8];
} h384_key;

static u8 h384_keys[H384_SLOTS][128];
static int h384_lengths[H384_SLOTS] = {-1, -1, -1, -1};
static h384_key h384_pads[H384_SLOTS];
static int h384_next = 0;

/* The slot holding the pad states of the key in h384_io (every byte compared), filled on a miss. */
static int h384_slot(int key_len) {
  const u8 *key = h384_io_buf;
  for (int s = 0; s < H384_SLOTS; s++) {
    if (h384_lengths[s] != key_len) continue;
    u8 diff = 0;
    for (int i = 0; i < key_len; i++) diff |= h384_keys[s][i] ^ key[i];
    if (diff == 0) return s;
  }
  int s = h384_next;
  h384_next = (h384_next + 1) % H384_SLOTS;
  u8 block[128];
  for (int pass = 0; pass < 2; pass++) {
    u64 *h = pass == 0 ? h384_pads[s].inner : h384_pads[s].outer;
    u8 pad = pass == 0 ? 0x36 : 0x5c;
    for (int i = 0; i < 8; i++) h[i] = IV384[i];
    for (int i = 0; i < 128; i++) block[i] = (i < key_len ? key[i] : 0) ^ pad;
    sha512_compress(h, block);
  }
  h384_wipe(block, sizeof block);
  for (int i = 0; i < 128; i++) h384_keys[s][i] = i < key_len ? key[i] : 0;
  h384_lengths[s] = key_len;
  return s;
}

/*
 * HMAC-SHA-384 of the message in h384_io under its key, into h384_io + H384_MAC; the key and the
 * message are wiped. Returns 0 (and computes nothing) for a key or message too long.
 */
H384_EXPORT(h384_mac) int h384_mac(int key_len, int len) {
  if (key_len < 0 || key_len > 128 || len < 0 || len > H384_MAX_DATA) return 0;
  int s = h384_slot(key_len);
  u8 *msg = h384_io_buf + H384_DATA;
  u64 h[8];
  for (int i = 0; i < 8; i++) h[i] = h384_pads[s].inner[i];
  int full = len / 128;
  for (int i = 0; i < full; i++) sha512_compress(h, msg + 128 * i);
  u8 inner[48];
  sha384_tail(inner, h, msg + 128 * full, len - 128 * full, 128 + 128 * (u64)full);
  for (int i = 0; i < 8; i++) h[i] = h384_pads[s].outer[i];
  sha384_tail(h384_io_buf + H384_MAC, h, inner, 48, 128);
  h384_wipe(inner, sizeof inner);
  h384_wipe(h, sizeof h);
  h384_wipe(h384_io_buf, 128);
  h384_wipe(msg, len);
  return 1;
}
