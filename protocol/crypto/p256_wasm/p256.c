/*
 * P-256 ECDSA signing core for WebAssembly (wasm32, no libc). Built by
 * protocol/crypto/p256_wasm/build.ts into _module.ts.
 *
 * Arithmetic: 8 x 32-bit limbs, little-endian, with 64-bit products (i64.mul). Mod p: the
 * product by columns and the NIST fast reduction; mod n: Montgomery (CIOS).
 * k*G: a fixed-base comb of 43 windows of 6 bits with signed (Booth) digits, each window a
 * table of the 32 affine multiples j * 2^(6 i) * G (built on first use), looked up by scanning
 * every entry. Windows 0..41 add in Jacobian coordinates (7M + 4S; base_mul says why no
 * exceptional case can arise there, the point at infinity being a masked select), the last
 * with the complete mixed addition of Renes, Costello and Batina 2016 (Algorithm 5, a = -3).
 * A zero digit keeps the accumulator by a masked select, a negative one negates y likewise.
 * The inversion mod p (affine x) is a Fermat power; the nonce's inversion mod n is a binary
 * Euclid on k times a random blinding factor. Nothing secret picks a branch or a memory
 * address, except that blinded inversion.
 * The nonce is RFC 6979's, with HMAC-SHA-256 here too; the same SHA-256 also serves the TLS key
 * schedule's HMACs (hm_io, hm_mac).
 *
 * Interface: one 256-byte I/O buffer (p256_io); numbers are 32-byte big-endian.
 */
#include <stdint.h>

typedef uint32_t u32;
typedef uint64_t u64;
typedef uint8_t u8;

#define EXPORT(name) __attribute__((export_name(#name)))
#define NOINLINE __attribute__((noinline))
#define INLINE static inline __attribute__((always_inline))

static const u32 P[8] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0x00000000u,
                         0x00000000u, 0x00000000u, 0x00000001u, 0xffffffffu};
static const u32 N[8] = {0xfc632551u, 0xf3b9cac2u, 0xa7179e84u, 0xbce6faadu,
                         0xffffffffu, 0xffffffffu, 0x00000000u, 0xffffffffu};
/* R^2 mod n, R = 2^256. */
static const u32 R2N[8] = {0xbe79eea2u, 0x83244c95u, 0x49bd6fa6u, 0x4699799cu,
                           0x2b6bec59u, 0x2845b239u, 0xf3d95620u, 0x66e12d94u};
/* -n^-1 mod 2^32 (for p it is 1). */
#define N0INV 0xee00bc4fu
/* (n - 1) / 2, the largest low S. */
static const u32 HALF_N[8] = {0x7e3192a8u, 0x79dce561u, 0xd38bcf42u, 0xde737d56u,
                              0xffffffffu, 0x7fffffffu, 0x80000000u, 0x7fffffffu};
static const u32 GX[8] = {0xd898c296u, 0xf4a13945u, 0x2deb33a0u, 0x77037d81u,
                          0x63a440f2u, 0xf8bce6e5u, 0xe12c4247u, 0x6b17d1f2u};
static const u32 GY[8] = {0x37bf51f5u, 0xcbb64068u, 0x6b315eceu, 0x2bce3357u,
                          0x7c0f9e16u, 0x8ee7eb4au, 0xfe1a7f9bu, 0x4fe342e2u};
static const u32 B[8] = {0x27d2604bu, 0x3bce3c3eu, 0xcc53b0f6u, 0x651d06b0u,
                         0x769886bcu, 0xb3ebbd55u, 0xaa3a93e7u, 0x5ac635d8u};

static u8 io[256];

/* ---- constant-time helpers ---- */

static void wipe(void *p, int len) {
  volatile u8 *q = (volatile u8 *)p;
  for (int i = 0; i < len; i++) q[i] = 0;
}


/* All ones when x != 0. */
INLINE u32 mask_nonzero(u32 x) { return (u32)0 - ((x | ((u32)0 - x)) >> 31); }
INLINE u32 mask_eq(u32 a, u32 b) { return ~mask_nonzero(a ^ b); }

INLINE void select8(u32 r[8], const u32 a[8], const u32 b[8], u32 mask) {
  for (int i = 0; i < 8; i++) r[i] = (a[i] & mask) | (b[i] & ~mask);
}

INLINE void copy8(u32 r[8], const u32 a[8]) {
  for (int i = 0; i < 8; i++) r[i] = a[i];
}

/* Borrow (0 or 1) of a - b. */
INLINE u32 sub8(u32 r[8], const u32 a[8], const u32 b[8]) {
  u64 borrow = 0;
  for (int i = 0; i < 8; i++) {
    u64 d = (u64)a[i] - b[i] - borrow;
    r[i] = (u32)d;
    borrow = d >> 63;
  }
  return (u32)borrow;
}

/* a mod m for a < 2m, with carry the 2^256 bit of a. */
INLINE void reduce_once(u32 r[8], const u32 a[8], u32 carry, const u32 m[8]) {
  u32 s[8];
  u32 borrow = sub8(s, a, m);
  select8(r, s, a, (u32)0 - (carry | (borrow ^ 1)));
}

INLINE void mod_add(u32 r[8], const u32 a[8], const u32 b[8], const u32 m[8]) {
  u32 t[8];
  u64 c = 0;
  for (int i = 0; i < 8; i++) {
    c += (u64)a[i] + b[i];
    t[i] = (u32)c;
    c >>= 32;
  }
  reduce_once(r, t, (u32)c, m);
}

INLINE void mod_sub(u32 r[8], const u32 a[8], const u32 b[8], const u32 m[8]) {
  u32 t[8];
  u32 mask = (u32)0 - sub8(t, a, b);
  u64 c = 0;
  for (int i = 0; i < 8; i++) {
    c += (u64)t[i] + (m[i] & mask);
    r[i] = (u32)c;
    c >>= 32;
  }
}

/* Montgomery product a * b / 2^256 mod m for a, b < m (CIOS). */
INLINE void mont_mul(u32 r[8], const u32 a[8], const u32 b[8], const u32 m[8], u32 minv) {
  u32 t[10] = {0};
  for (int i = 0; i < 8; i++) {
    u64 c = 0;
    for (int j = 0; j < 8; j++) {
      c = (u64)a[j] * b[i] + t[j] + (c >> 32);
      t[j] = (u32)c;
    }
    c = (u64)t[8] + (c >> 32);
    t[8] = (u32)c;
    t[9] = (u32)(c >> 32);
    u32 q = t[0] * minv;
    c = (u64)q * m[0] + t[0];
    for (int j = 1; j < 8; j++) {
      c = (u64)q * m[j] + t[j] + (c >> 32);
      t[j - 1] = (u32)c;
    }
    c = (u64)t[8] + (c >> 32);
    t[7] = (u32)c;
    t[8] = t[9] + (u32)(c >> 32);
  }
  reduce_once(r, t, t[8], m);
}

/* ---- the field mod p and the scalars mod n ---- */

/*
 * r = c mod p for a 512-bit c (16 words), by the NIST fast reduction (FIPS 186-4, D.2.3):
 * c = s1 + 2 s2 + 2 s3 + s4 + s5 - d1 - d2 - d3 - d4, summed per word in signed 64 bits,
 * then the carry out of 2^256 folded back twice as 2^256 = 2^224 - 2^192 - 2^96 + 1 (mod p).
 */
INLINE void fp_reduce(u32 r[8], const u32 c[16]) {
  int64_t w[8];
  int64_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], c4 = c[4], c5 = c[5], c6 = c[6],
          c7 = c[7], c8 = c[8], c9 = c[9], c10 = c[10], c11 = c[11], c12 = c[12],
          c13 = c[13], c14 = c[14], c15 = c[15];
  w[0] = c0 + c8 + c9 - c11 - c12 - c13 - c14;
  w[1] = c1 + c9 + c10 - c12 - c13 - c14 - c15;
  w[2] = c2 + c10 + c11 - c13 - c14 - c15;
  w[3] = c3 + 2 * c11 + 2 * c12 + c13 - c15 - c8 - c9;
  w[4] = c4 + 2 * c12 + 2 * c13 + c14 - c9 - c10;
  w[5] = c5 + 2 * c13 + 2 * c14 + c15 - c10 - c11;
  w[6] = c6 + 3 * c14 + 2 * c15 + c13 - c8 - c9;
  w[7] = c7 + 3 * c15 + c8 - c10 - c11 - c12 - c13;
  for (int round = 0; round < 3; round++) {
    int64_t carry = 0;
    for (int i = 0; i < 8; i++) {
      w[i] += carry;
      carry = w[i] >> 32;
      w[i] &= 0xffffffff;
    }
    if (round == 2) break;
    w[0] += carry;
    w[3] -= carry;
    w[6] -= carry;
    w[7] += carry;
  }
  u32 t[8];
  for (int i = 0; i < 8; i++) t[i] = (u32)w[i];
  reduce_once(r, t, 0, P);
}

/* The 512-bit value of columns lo[k] + hi[k] 2^32 (k = 0..14) as 16 words. */
INLINE void fp_columns(u32 c[16], const u64 lo[15], const u64 hi[15]) {
  u64 carry = 0;
#pragma clang loop unroll(full)
  for (int k = 0; k < 15; k++) {
    u64 v = lo[k] + carry;
    c[k] = (u32)v;
    carry = (v >> 32) + hi[k];
  }
  c[15] = (u32)carry;
}

/* a * b mod p: the 512-bit product by columns, each column summed as two halves. */
static NOINLINE void fp_mul(u32 r[8], const u32 a[8], const u32 b[8]) {
  u64 lo[15] = {0}, hi[15] = {0};
#pragma clang loop unroll(full)
  for (int i = 0; i < 8; i++) {
#pragma clang loop unroll(full)
    for (int j = 0; j < 8; j++) {
      u64 p = (u64)a[i] * b[j];
      lo[i + j] += (u32)p;
      hi[i + j] += p >> 32;
    }
  }
  u32 c[16];
  fp_columns(c, lo, hi);
  fp_reduce(r, c);
}

/* a^2 mod p: the cross products once, doubled. */
static NOINLINE void fp_sqr(u32 r[8], const u32 a[8]) {
  u64 lo[15] = {0}, hi[15] = {0};
#pragma clang loop unroll(full)
  for (int i = 0; i < 8; i++) {
#pragma clang loop unroll(full)
    for (int j = i + 1; j < 8; j++) {
      u64 p = (u64)a[i] * a[j];
      lo[i + j] += (u32)p;
      hi[i + j] += p >> 32;
    }
  }
#pragma clang loop unroll(full)
  for (int k = 0; k < 15; k++) {
    lo[k] <<= 1;
    hi[k] <<= 1;
  }
#pragma clang loop unroll(full)
  for (int i = 0; i < 8; i++) {
    u64 p = (u64)a[i] * a[i];
    lo[2 * i] += (u32)p;
    hi[2 * i] += p >> 32;
  }
  u32 c[16];
  fp_columns(c, lo, hi);
  fp_reduce(r, c);
}

static void fp_sqr_n(u32 r[8], const u32 a[8], int n) {
  fp_sqr(r, a);
  for (int i = 1; i < n; i++) fp_sqr(r, r);
}
static NOINLINE void fp_add(u32 r[8], const u32 a[8], const u32 b[8]) { mod_add(r, a, b, P); }
static NOINLINE void fp_sub(u32 r[8], const u32 a[8], const u32 b[8]) { mod_sub(r, a, b, P); }
static NOINLINE void fn_mul(u32 r[8], const u32 a[8], const u32 b[8]) {
  mont_mul(r, a, b, N, N0INV);
}

INLINE int is_one(const u32 a[8]) {
  u32 any = a[0] ^ 1;
  for (int i = 1; i < 8; i++) any |= a[i];
  return any == 0;
}

/*
 * Divides the even a by 2^t (t = its trailing zeros, at most 31 at a time) and x by the same
 * 2^t mod m: x + q m with q = x (-m^-1) mod 2^t is divisible by 2^t (minv = -m^-1 mod 2^32).
 */
INLINE void shift_out(u32 a[8], u32 x[8], const u32 m[8], u32 minv) {
  for (int step = 0; step < 9 && (a[0] & 1) == 0; step++) {
    u32 t = a[0] == 0 ? 31 : (u32)__builtin_ctz(a[0]);
    if (t > 31) t = 31;
    for (int i = 0; i < 7; i++) a[i] = (a[i] >> t) | (a[i + 1] << (32 - t));
    a[7] >>= t;
    u32 q = (x[0] * minv) & ((1u << t) - 1);
    u32 y[9];
    u64 c = 0;
    for (int i = 0; i < 8; i++) {
      c += (u64)q * m[i] + x[i];
      y[i] = (u32)c;
      c >>= 32;
    }
    y[8] = (u32)c;
    for (int i = 0; i < 8; i++) x[i] = (y[i] >> t) | (y[i + 1] << (32 - t));
    reduce_once(x, x, y[8] >> t, m);
  }
}

/*
 * a^-1 mod m (m odd, 1 <= a < m) by the binary extended Euclidean algorithm, shifting out
 * runs of zero bits at once. Its running time depends on a: callers only pass blinded values
 * (a random multiple of the secret), as @noble/curves does for its nonce inversion.
 */
static NOINLINE void inv_vartime(u32 r[8], const u32 a[8], const u32 m[8], u32 minv) {
  u32 u[8], v[8], x1[8] = {1, 0, 0, 0, 0, 0, 0, 0}, x2[8] = {0}, t[8];
  u32 any = 0;
  for (int i = 0; i < 8; i++) any |= a[i];
  if (any == 0) { /* no inverse; only an invalid nonce gets here */
    for (int i = 0; i < 8; i++) r[i] = 0;
    return;
  }
  copy8(u, a);
  copy8(v, m);
  /* Bounded: each round takes at least one bit off u or v (2 * 256 rounds at most). */
  for (int round = 0; round < 1024 && !is_one(u) && !is_one(v); round++) {
    shift_out(u, x1, m, minv);
    shift_out(v, x2, m, minv);
    if (sub8(t, u, v) == 0) {
      copy8(u, t);
      mod_sub(x1, x1, x2, m);
    } else {
      sub8(v, v, u);
      mod_sub(x2, x2, x1, m);
    }
  }
  if (is_one(u)) copy8(r, x1);
  else copy8(r, x2);
  wipe(u, sizeof u);
  wipe(v, sizeof v);
  wipe(x1, sizeof x1);
  wipe(x2, sizeof x2);
  wipe(t, sizeof t);
}

/*
 * a^-1 mod p as a^(p-2) (0 for a = 0), by an addition chain of 255 squarings and 12
 * products: p - 2 = (2^32 - 1) 2^224 + 2^192 + 2^96 - 3.
 */
static NOINLINE void fp_inv(u32 r[8], const u32 a[8]) {
  u32 x2[8], x3[8], x6[8], x12[8], x15[8], x30[8], x32[8], t[8];
  fp_sqr(t, a);
  fp_mul(x2, t, a);
  fp_sqr(t, x2);
  fp_mul(x3, t, a);
  fp_sqr_n(t, x3, 3);
  fp_mul(x6, t, x3);
  fp_sqr_n(t, x6, 6);
  fp_mul(x12, t, x6);
  fp_sqr_n(t, x12, 3);
  fp_mul(x15, t, x3);
  fp_sqr_n(t, x15, 15);
  fp_mul(x30, t, x15);
  fp_sqr_n(t, x30, 2);
  fp_mul(x32, t, x2);
  fp_sqr_n(t, x32, 32);
  fp_mul(t, t, a);
  fp_sqr_n(t, t, 96 + 32);
  fp_mul(t, t, x32);
  fp_sqr_n(t, t, 32);
  fp_mul(t, t, x32);
  fp_sqr_n(t, t, 30);
  fp_mul(t, t, x30);
  fp_sqr_n(t, t, 2);
  fp_mul(r, t, a);
}

/* ---- points: projective (X : Y : Z), coordinates as residues mod p ---- */

typedef struct {
  u32 x[8], y[8], z[8];
} point;

INLINE void fp_mul_b(u32 r[8], const u32 a[8]) { fp_mul(r, a, B); }

/* P1 + P2, complete (RCB 2016, Algorithm 4, a = -3). r may alias p1. */
static NOINLINE void point_add(point *r, const point *p1, const point *p2) {
  u32 t0[8], t1[8], t2[8], t3[8], t4[8], x3[8], y3[8], z3[8];
  fp_mul(t0, p1->x, p2->x);
  fp_mul(t1, p1->y, p2->y);
  fp_mul(t2, p1->z, p2->z);
  fp_add(t3, p1->x, p1->y);
  fp_add(t4, p2->x, p2->y);
  fp_mul(t3, t3, t4);
  fp_add(t4, t0, t1);
  fp_sub(t3, t3, t4);
  fp_add(t4, p1->y, p1->z);
  fp_add(x3, p2->y, p2->z);
  fp_mul(t4, t4, x3);
  fp_add(x3, t1, t2);
  fp_sub(t4, t4, x3);
  fp_add(x3, p1->x, p1->z);
  fp_add(y3, p2->x, p2->z);
  fp_mul(x3, x3, y3);
  fp_add(y3, t0, t2);
  fp_sub(y3, x3, y3);
  fp_mul_b(z3, t2);
  fp_sub(x3, y3, z3);
  fp_add(z3, x3, x3);
  fp_add(x3, x3, z3);
  fp_sub(z3, t1, x3);
  fp_add(x3, t1, x3);
  fp_mul_b(y3, y3);
  fp_add(t1, t2, t2);
  fp_add(t2, t1, t2);
  fp_sub(y3, y3, t2);
  fp_sub(y3, y3, t0);
  fp_add(t1, y3, y3);
  fp_add(y3, t1, y3);
  fp_add(t1, t0, t0);
  fp_add(t0, t1, t0);
  fp_sub(t0, t0, t2);
  fp_mul(t1, t4, y3);
  fp_mul(t2, t0, y3);
  fp_mul(y3, x3, z3);
  fp_add(y3, y3, t2);
  fp_mul(x3, t3, x3);
  fp_sub(x3, x3, t1);
  fp_mul(z3, t4, z3);
  fp_mul(t1, t3, t0);
  fp_add(z3, z3, t1);
  copy8(r->x, x3);
  copy8(r->y, y3);
  copy8(r->z, z3);
}

/* P1 + (x2, y2) for an affine P2 that is not the point at infinity (RCB 2016, Algorithm 5). */
static NOINLINE void point_add_affine(point *r, const point *p1, const u32 x2[8],
                                      const u32 y2[8]) {
  u32 t0[8], t1[8], t2[8], t3[8], t4[8], x3[8], y3[8], z3[8];
  fp_mul(t0, p1->x, x2);
  fp_mul(t1, p1->y, y2);
  fp_add(t3, x2, y2);
  fp_add(t4, p1->x, p1->y);
  fp_mul(t3, t3, t4);
  fp_add(t4, t0, t1);
  fp_sub(t3, t3, t4);
  fp_mul(t4, y2, p1->z);
  fp_add(t4, t4, p1->y);
  fp_mul(y3, x2, p1->z);
  fp_add(y3, y3, p1->x);
  fp_mul_b(z3, p1->z);
  fp_sub(x3, y3, z3);
  fp_add(z3, x3, x3);
  fp_add(x3, x3, z3);
  fp_sub(z3, t1, x3);
  fp_add(x3, t1, x3);
  fp_mul_b(y3, y3);
  fp_add(t1, p1->z, p1->z);
  fp_add(t2, t1, p1->z);
  fp_sub(y3, y3, t2);
  fp_sub(y3, y3, t0);
  fp_add(t1, y3, y3);
  fp_add(y3, t1, y3);
  fp_add(t1, t0, t0);
  fp_add(t0, t1, t0);
  fp_sub(t0, t0, t2);
  fp_mul(t1, t4, y3);
  fp_mul(t2, t0, y3);
  fp_mul(y3, x3, z3);
  fp_add(y3, y3, t2);
  fp_mul(x3, t3, x3);
  fp_sub(x3, x3, t1);
  fp_mul(z3, t4, z3);
  fp_mul(t1, t3, t0);
  fp_add(z3, z3, t1);
  copy8(r->x, x3);
  copy8(r->y, y3);
  copy8(r->z, z3);
}

/* ---- the fixed-base comb ---- */

/*
 * k = sum of d_i 2^(W i) with signed digits |d_i| <= 2^(W-1) (Booth recoding), so each
 * window's table holds only the positive multiples 1..2^(W-1); a negative digit negates y.
 * W = 6: 43 windows (the last takes the carry out of bit 255) of 32 entries.
 */
#ifndef COMB_BITS
#define COMB_BITS 6
#endif
#define WINDOWS ((256 + COMB_BITS) / COMB_BITS)
#define ENTRIES (1 << (COMB_BITS - 1))

/* TABLE[i][j] = (j + 1) * 2^(W i) * G, affine x || y. */
static u32 TABLE[WINDOWS][ENTRIES][16];
static int ready = 0;

static void build_table(void) {
  static point window[ENTRIES];
  static u32 prefix[ENTRIES][8];
  point base;
  copy8(base.x, GX);
  copy8(base.y, GY);
  for (int i = 0; i < 8; i++) base.z[i] = i == 0;
  for (int i = 0; i < WINDOWS; i++) {
    window[0] = base;
    for (int j = 1; j < ENTRIES; j++) point_add(&window[j], &window[j - 1], &base);
    point_add(&base, &window[ENTRIES - 1], &window[ENTRIES - 1]);
    /* One inversion per window (Montgomery's trick); no Z is zero: no multiple reaches n. */
    copy8(prefix[0], window[0].z);
    for (int j = 1; j < ENTRIES; j++) fp_mul(prefix[j], prefix[j - 1], window[j].z);
    u32 inv[8], zinv[8];
    fp_inv(inv, prefix[ENTRIES - 1]);
    for (int j = ENTRIES - 1; j >= 0; j--) {
      if (j > 0) {
        fp_mul(zinv, inv, prefix[j - 1]);
        fp_mul(inv, inv, window[j].z);
      } else {
        copy8(zinv, inv);
      }
      fp_mul(TABLE[i][j], window[j].x, zinv);
      fp_mul(TABLE[i][j] + 8, window[j].y, zinv);
    }
  }
  ready = 1;
}

/* Window i of k recoded: its magnitude (0..2^(W-1)) and all ones when negative. */
INLINE u32 booth_digit(const u32 k[10], int i, u32 *negative) {
  int pos = i * COMB_BITS - 1; /* public */
  u64 v;
  if (pos < 0) {
    v = (u64)k[0] << 1;
  } else {
    v = ((u64)k[pos >> 5] | ((u64)k[(pos >> 5) + 1] << 32)) >> (pos & 31);
  }
  u32 bits = (u32)v & ((1u << (COMB_BITS + 1)) - 1);
  u32 sign = (u32)0 - (bits >> COMB_BITS);
  u32 d = (((1u << (COMB_BITS + 1)) - bits - 1) & sign) | (bits & ~sign);
  *negative = sign;
  return (d >> 1) + (d & 1);
}

/*
 * (X1 : Y1 : Z1) + (x2, y2) in Jacobian coordinates (x = X / Z^2, y = Y / Z^3), 7M + 4S
 * (add-2007-bl with Z2 = 1). Not complete: P1 must not be the point at infinity nor +-P2.
 */
static NOINLINE void jacobian_add_affine(point *r, const point *p1, const u32 x2[8],
                                         const u32 y2[8]) {
  u32 z1z1[8], u2[8], s2[8], h[8], hh[8], i4[8], j[8], rr[8], v[8], t[8], x3[8], y3[8];
  fp_sqr(z1z1, p1->z);
  fp_mul(u2, x2, z1z1);
  fp_mul(s2, y2, p1->z);
  fp_mul(s2, s2, z1z1);
  fp_sub(h, u2, p1->x);
  fp_sqr(hh, h);
  fp_add(i4, hh, hh);
  fp_add(i4, i4, i4);
  fp_mul(j, h, i4);
  fp_sub(rr, s2, p1->y);
  fp_add(rr, rr, rr);
  fp_mul(v, p1->x, i4);
  fp_sqr(t, rr);
  fp_sub(t, t, j);
  fp_sub(t, t, v);
  fp_sub(x3, t, v);
  fp_sub(t, v, x3);
  fp_mul(t, rr, t);
  fp_mul(y3, p1->y, j);
  fp_add(y3, y3, y3);
  fp_sub(y3, t, y3);
  fp_add(t, p1->z, h);
  fp_sqr(t, t);
  fp_sub(t, t, z1z1);
  fp_sub(r->z, t, hh);
  copy8(r->x, x3);
  copy8(r->y, y3);
}

/* Window i's table entry for k: x || y of |d| * 2^(W i) * G, y negated for d < 0. */
INLINE u32 comb_entry(u32 e[16], const u32 k[10], int i) {
  u32 negative;
  u32 digit = booth_digit(k, i, &negative);
  for (int w = 0; w < 16; w++) e[w] = 0;
  for (int j = 0; j < ENTRIES; j++) {
    u32 mask = mask_eq(digit, (u32)j + 1);
    for (int w = 0; w < 16; w++) e[w] |= TABLE[i][j][w] & mask;
  }
  u32 ny[8], zero[8] = {0};
  fp_sub(ny, zero, e + 8);
  select8(e + 8, ny, e + 8, negative);
  return digit;
}

/*
 * k * G in projective coordinates, for 0 <= k < 2^256. With Booth digits the sum of windows
 * 0..i-1 is S = s * G with |s| <= 2^(6i - 1), and window i adds d * 2^(6i) * G with
 * 1 <= |d| <= 32: s = +-d 2^(6i) (mod n) would need |s -+ d 2^(6i)| >= n, which first becomes
 * possible in the last window. So windows 0..41 use the faster incomplete Jacobian addition,
 * with the point at infinity (s = 0, all digits so far zero) tracked by a mask, and the last
 * window the complete projective one.
 */
static void base_mul(point *r, const u32 k8[8]) {
  u32 k[10] = {0};
  copy8(k, k8);
  point acc, sum;
  for (int i = 0; i < 8; i++) acc.x[i] = acc.z[i] = 0;
  for (int i = 0; i < 8; i++) acc.y[i] = i == 0;
  u32 one[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  u32 infinity = 0xffffffffu;
  u32 e[16];
  for (int i = 0; i < WINDOWS - 1; i++) {
    u32 keep = mask_nonzero(comb_entry(e, k, i));
    jacobian_add_affine(&sum, &acc, e, e + 8);
    select8(sum.x, e, sum.x, infinity);
    select8(sum.y, e + 8, sum.y, infinity);
    select8(sum.z, one, sum.z, infinity);
    select8(acc.x, sum.x, acc.x, keep);
    select8(acc.y, sum.y, acc.y, keep);
    select8(acc.z, sum.z, acc.z, keep);
    infinity &= ~keep;
  }
  /* Jacobian to projective: (X Z, Y, Z^3); the point at infinity (0, 1, 0) stays itself. */
  u32 zz[8];
  fp_sqr(zz, acc.z);
  fp_mul(acc.x, acc.x, acc.z);
  fp_mul(acc.z, acc.z, zz);
  u32 keep = mask_nonzero(comb_entry(e, k, WINDOWS - 1));
  point_add_affine(&sum, &acc, e, e + 8);
  select8(acc.x, sum.x, acc.x, keep);
  select8(acc.y, sum.y, acc.y, keep);
  select8(acc.z, sum.z, acc.z, keep);
  *r = acc;
  wipe(k, sizeof k);
  wipe(e, sizeof e);
}

/* ---- bytes ---- */

static void load(u32 r[8], const u8 *b) {
  for (int i = 0; i < 8; i++) {
    const u8 *q = b + 28 - 4 * i;
    r[i] = ((u32)q[0] << 24) | ((u32)q[1] << 16) | ((u32)q[2] << 8) | q[3];
  }
}

static void store(u8 *b, const u32 a[8]) {
  for (int i = 0; i < 8; i++) {
    u8 *q = b + 28 - 4 * i;
    q[0] = (u8)(a[i] >> 24);
    q[1] = (u8)(a[i] >> 16);
    q[2] = (u8)(a[i] >> 8);
    q[3] = (u8)a[i];
  }
}

/* All ones when 1 <= a < m. */
static u32 mask_in_range(const u32 a[8], const u32 m[8]) {
  u32 t[8];
  u32 below = sub8(t, a, m);
  u32 any = 0;
  for (int i = 0; i < 8; i++) any |= a[i];
  return ((u32)0 - below) & mask_nonzero(any);
}

/* Overwrites the stack below the caller's frame, where the callees kept their temporaries. */
static NOINLINE void burn_stack(void) {
  volatile u8 buf[4096];
  for (int i = 0; i < (int)sizeof buf; i++) buf[i] = 0;
}

/* Affine x (and y) of a projective point. */
static void to_affine(u32 x[8], u32 y[8], const point *p) {
  u32 zinv[8];
  fp_inv(zinv, p->z);
  fp_mul(x, p->x, zinv);
  if (y) fp_mul(y, p->y, zinv);
}

/* ---- HMAC-SHA-256 (FIPS 180-4, RFC 2104) for the RFC 6979 nonce ---- */

static const u32 SHA_K[64] = {0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u, 0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/* One SHA-256 block; the schedule is a rolling window of 16 words kept in locals. */
static NOINLINE void sha256_compress(u32 h[8], const u8 block[64]) {
  u32 w[16];
#pragma clang loop unroll(full)
  for (int i = 0; i < 16; i++) {
    const u8 *q = block + 4 * i;
    w[i] = ((u32)q[0] << 24) | ((u32)q[1] << 16) | ((u32)q[2] << 8) | q[3];
  }
  u32 a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
#pragma clang loop unroll(full)
  for (int i = 0; i < 64; i++) {
    if (i >= 16) {
      u32 w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
      u32 s0 = ROTR(w15, 7) ^ ROTR(w15, 18) ^ (w15 >> 3);
      u32 s1 = ROTR(w2, 17) ^ ROTR(w2, 19) ^ (w2 >> 10);
      w[i & 15] += s0 + w[(i - 7) & 15] + s1;
    }
    u32 t1 = hh + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + SHA_K[i] +
             w[i & 15];
    u32 t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
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
}

/* An HMAC-SHA-256 key (32 bytes) as the hash states after its inner and outer pad blocks. */
typedef struct {
  u32 inner[8], outer[8];
} hmac_key;

/* The pad states of a key of key_len <= 64 bytes (zero-padded to a block, RFC 2104). */
static void hmac_key_init(hmac_key *hk, const u8 *key, int key_len) {
  static const u32 IV[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                            0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
  u8 block[64];
  for (int pass = 0; pass < 2; pass++) {
    u32 *h = pass == 0 ? hk->inner : hk->outer;
    u8 pad = pass == 0 ? 0x36 : 0x5c;
    copy8(h, IV);
    for (int i = 0; i < 64; i++) block[i] = (i < key_len ? key[i] : 0) ^ pad;
    sha256_compress(h, block);
  }
  wipe(block, sizeof block);
}

/*
 * Finishes a hash whose state has taken `prefix` bytes (whole blocks), with msg (len <= 119
 * bytes).
 */
static void sha256_tail(u8 out[32], const u32 state[8], const u8 *msg, int len, u32 prefix) {
  u32 h[8];
  copy8(h, state);
  u8 block[128];
  for (int i = 0; i < 128; i++) block[i] = 0;
  for (int i = 0; i < len; i++) block[i] = msg[i];
  block[len] = 0x80;
  int blocks = len + 9 <= 64 ? 1 : 2;
  u32 bits = (prefix + (u32)len) * 8;
  u8 *end = block + 64 * blocks;
  end[-4] = (u8)(bits >> 24);
  end[-3] = (u8)(bits >> 16);
  end[-2] = (u8)(bits >> 8);
  end[-1] = (u8)bits;
  for (int i = 0; i < blocks; i++) sha256_compress(h, block + 64 * i);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (u8)(h[i] >> 24);
    out[4 * i + 1] = (u8)(h[i] >> 16);
    out[4 * i + 2] = (u8)(h[i] >> 8);
    out[4 * i + 3] = (u8)h[i];
  }
  wipe(block, sizeof block);
  wipe(h, sizeof h);
}

/* Finishes a hash whose state has taken one 64-byte block (a key's pad block). */
static void sha256_finish(u8 out[32], const u32 state[8], const u8 *msg, int len) {
  sha256_tail(out, state, msg, len, 64);
}

/* HMAC-SHA-256 (RFC 2104) of msg (at most 119 bytes). out may alias msg. */
static void hmac_sha256(u8 out[32], const hmac_key *hk, const u8 *msg, int len) {
  u8 inner[32];
  sha256_finish(inner, hk->inner, msg, len);
  sha256_finish(out, hk->outer, inner, 32);
  wipe(inner, sizeof inner);
}

/* ---- HMAC-SHA-256 for the TLS key schedule (hm_io, hm_mac) ---- */

/*
 * `hm_io` layout: the key (at most 64 bytes) at 0, the MAC out at 64, the message (at most
 * HM_MAX_DATA bytes) at 96. The states after a key's inner and outer pad blocks are kept for the
 * last HM_SLOTS keys: a TLS 1.3 key schedule expands most secrets two or three times in a row,
 * and the salt of the handshake secret is the same in every full handshake.
 */
#define HM_MAX_DATA 1024
#define HM_SLOTS 4
static u8 hm_io_buf[96 + HM_MAX_DATA] __attribute__((aligned(16)));
static u8 hm_keys[HM_SLOTS][64];
static int hm_lengths[HM_SLOTS] = {-1, -1, -1, -1};
static hmac_key hm_pads[HM_SLOTS];
static int hm_next = 0;

EXPORT(hm_io) u8 *hm_io(void) { return hm_io_buf; }

/* The slot holding the pad states of the key in hm_io (every byte compared), filled on a miss. */
static int hm_slot(int key_len) {
  const u8 *key = hm_io_buf;
  for (int s = 0; s < HM_SLOTS; s++) {
    if (hm_lengths[s] != key_len) continue;
    u8 diff = 0;
    for (int i = 0; i < key_len; i++) diff |= hm_keys[s][i] ^ key[i];
    if (diff == 0) return s;
  }
  int s = hm_next;
  hm_next = (hm_next + 1) % HM_SLOTS;
  hmac_key_init(&hm_pads[s], key, key_len);
  for (int i = 0; i < 64; i++) hm_keys[s][i] = i < key_len ? key[i] : 0;
  hm_lengths[s] = key_len;
  return s;
}

/*
 * HMAC-SHA-256 (RFC 2104) of the message in hm_io under its key, into hm_io + 64; the key and
 * the message are wiped. Returns 0 for a key or message too long.
 */
EXPORT(hm_mac) int hm_mac(int key_len, int len) {
  if (key_len < 0 || key_len > 64 || len < 0 || len > HM_MAX_DATA) return 0;
  int s = hm_slot(key_len);
  u8 *msg = hm_io_buf + 96;
  u32 h[8];
  copy8(h, hm_pads[s].inner);
  int full = len / 64;
  for (int i = 0; i < full; i++) sha256_compress(h, msg + 64 * i);
  u8 inner[32];
  sha256_tail(inner, h, msg + 64 * full, len - 64 * full, 64 + 64 * (u32)full);
  sha256_finish(hm_io_buf + 64, hm_pads[s].outer, inner, 32);
  wipe(inner, sizeof inner);
  wipe(h, sizeof h);
  wipe(hm_io_buf, 64);
  wipe(msg, len);
  return 1;
}

/* ---- exports ---- */

EXPORT(p256_io) u8 *p256_io(void) { return io; }

/* Builds the comb table (also done by the first signature). */
EXPORT(p256_init) void p256_init(void) {
  if (!ready) build_table();
}

/*
 * a^-1 R mod n in Montgomery form for 1 <= a < n, as bn (a bn)^-1: the variable-time inversion
 * only sees a times the random blinding factor bn.
 */
static void fn_inv_blinded(u32 r[8], const u32 a[8], const u32 bn[8]) {
  u32 t[8];
  fn_mul(t, a, R2N);
  fn_mul(t, t, bn);
  inv_vartime(t, t, N, N0INV);
  fn_mul(t, t, R2N);
  fn_mul(t, t, bn);
  fn_mul(r, t, R2N);
  wipe(t, sizeof t);
}

/*
 * The message-free half of an ECDSA signature with nonce k: r = (k G).x mod n and k^-1 in
 * Montgomery form (k^-1 R mod n), the inversion blinded by bn. Returns all ones, or 0 when k is
 * not in [1, n - 1] or r is zero.
 */
static u32 nonce_point(u32 r[8], u32 kinv[8], const u32 k_in[8], const u32 bn[8]) {
  u32 k[8], x[8];
  copy8(k, k_in);
  u32 ok = mask_in_range(k, N);
  point q;
  base_mul(&q, k);
  /* x = X / Z; Fermat in constant time (as fast here as a blinded binary Euclid). */
  to_affine(x, 0, &q);
  /* r = x mod n: x < p < 2n. */
  reduce_once(r, x, 0, N);
  fn_inv_blinded(kinv, k, bn);
  u32 any_r = 0;
  for (int i = 0; i < 8; i++) any_r |= r[i];
  wipe(k, sizeof k);
  wipe(&q, sizeof q);
  wipe(x, sizeof x);
  return ok & mask_nonzero(any_r);
}

/*
 * The other half: s = k^-1 (z + r d), low S (as @noble/curves signs; S and n - S both verify),
 * from r and k^-1 R of `nonce_point`. z is the digest reduced mod n. Returns all ones, or 0
 * when s is zero.
 */
static u32 sign_finish(u32 s[8], const u32 r[8], const u32 kinv[8], const u32 d[8],
                       const u32 z[8]) {
  u32 t[8], u[8];
  /* (r R) d / R = r d in Montgomery arithmetic. */
  fn_mul(t, r, R2N);
  fn_mul(t, t, d);
  mod_add(u, z, t, N);
  fn_mul(s, kinv, u);
  u32 high = sub8(t, HALF_N, s);
  u32 zero[8] = {0};
  mod_sub(t, zero, s, N);
  select8(s, t, s, (u32)0 - high);
  u32 any_s = 0;
  for (int i = 0; i < 8; i++) any_s |= s[i];
  wipe(t, sizeof t);
  wipe(u, sizeof u);
  return mask_nonzero(any_s);
}

/*
 * One ECDSA signature attempt with nonce k: r and s. Returns all ones, or 0 when k is not in
 * [1, n - 1] or r or s is zero.
 */
static u32 sign_with(u32 r[8], u32 s[8], const u32 d[8], const u32 z[8], const u32 k_in[8],
                     const u32 bn[8]) {
  u32 kinv[8];
  u32 ok = nonce_point(r, kinv, k_in, bn);
  ok &= sign_finish(s, r, kinv, d, z);
  wipe(kinv, sizeof kinv);
  return ok;
}

/* A blinding factor in [1, m - 1] from 32 random bytes (the rare 0 becomes 1). */
static void load_blind(u32 b[8], const u8 *bytes, const u32 m[8]) {
  load(b, bytes);
  reduce_once(b, b, 0, m);
  u32 any = 0;
  for (int i = 0; i < 8; i++) any |= b[i];
  b[0] |= ~mask_nonzero(any) & 1;
}

/* RFC 6979's HMAC-DRBG (Section 3.2, on HMAC-SHA-256, as @noble/curves draws it): K and V. */
typedef struct {
  hmac_key hk;
  u8 kk[32], v[32];
} drbg;

/* Steps b to g for the key d and the 32 bytes h in place of the digest. */
static void drbg_init(drbg *g, const u32 d[8], const u32 h[8]) {
  u8 msg[97];
  /* K = HMAC_K(V || 0x00 || int2octets(d) || bits2octets(h)), V = HMAC_K(V), and again with
     0x01; V is all 1s and K all 0s to begin with. */
  for (int i = 0; i < 32; i++) {
    g->v[i] = 1;
    g->kk[i] = 0;
  }
  store(msg + 33, d);
  store(msg + 65, h);
  hmac_key_init(&g->hk, g->kk, 32);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 32; i++) msg[i] = g->v[i];
    msg[32] = (u8)round;
    hmac_sha256(g->kk, &g->hk, msg, 97);
    hmac_key_init(&g->hk, g->kk, 32);
    hmac_sha256(g->v, &g->hk, g->v, 32);
  }
  wipe(msg, sizeof msg);
}

/* Step h: V = HMAC_K(V), the candidate k = bits2int(V). */
static void drbg_candidate(u32 k[8], drbg *g) {
  hmac_sha256(g->v, &g->hk, g->v, 32);
  load(k, g->v);
}

/* After a candidate that did not serve: K = HMAC_K(V || 0x00), V = HMAC_K(V). */
static void drbg_reseed(drbg *g) {
  u8 msg[33];
  for (int i = 0; i < 32; i++) msg[i] = g->v[i];
  msg[32] = 0;
  hmac_sha256(g->kk, &g->hk, msg, 33);
  hmac_key_init(&g->hk, g->kk, 32);
  hmac_sha256(g->v, &g->hk, g->v, 32);
  wipe(msg, sizeof msg);
}

/*
 * The nonce generation of RFC 6979 from the key d and the 32 bytes h in place of the digest,
 * each candidate k handed to `sign_with` (with z = h, out r and s to io[96..160)) or, with
 * `nonce_only`, to `nonce_point` (out r and k^-1 R to io[192..256)); a k out of range or a zero
 * r or s draws the next. Returns 1, or 0 if no nonce served (never in practice).
 */
static int rfc6979(const u32 d[8], const u32 h[8], const u32 bn[8], int nonce_only) {
  u32 r[8], s[8], k[8];
  drbg g;
  int result = 0;
  drbg_init(&g, d, h);
  for (int attempt = 0; attempt < 1000 && result == 0; attempt++) {
    drbg_candidate(k, &g);
    u32 ok = nonce_only ? nonce_point(r, s, k, bn) : sign_with(r, s, d, h, k, bn);
    if (ok & 1) { /* the attempt's outcome, not a secret */
      store(io + (nonce_only ? 192 : 96), r);
      store(io + (nonce_only ? 224 : 128), s);
      result = 1;
    } else {
      drbg_reseed(&g);
    }
  }
  wipe(r, sizeof r);
  wipe(s, sizeof s);
  wipe(k, sizeof k);
  wipe(&g, sizeof g);
  return result;
}

/*
 * p256_sign and p256_nonce: d from io[0..32), the 32 bytes in place of the digest from
 * io[32..64), blinding bytes from io[160..192), all wiped; then `rfc6979`. Returns its result,
 * or -1 when d is not in [1, n - 1].
 */
static int from_io(int nonce_only) {
  if (!ready) build_table();
  u32 d[8], h[8], bn[8];
  load(d, io);
  load(h, io + 32);
  load_blind(bn, io + 160, N);
  wipe(io, 64);
  wipe(io + 160, 32);
  int result = -1;
  if (mask_in_range(d, N) & 1) { /* an invalid key, not a secret bit */
    reduce_once(h, h, 0, N);
    result = rfc6979(d, h, bn, nonce_only);
  }
  wipe(d, sizeof d);
  wipe(h, sizeof h);
  wipe(bn, sizeof bn);
  burn_stack();
  return result;
}

/*
 * ECDSA signature with the deterministic nonce of RFC 6979: in io[0..32) d, io[32..64) the
 * leftmost 256 bits of the digest, io[160..192) 32 random bytes to blind the nonce's
 * inversion; out io[96..128) r, io[128..160) s. Returns 1; -1 when d is not in [1, n - 1]; 0 if
 * no nonce served (never in practice). The inputs are wiped.
 */
EXPORT(p256_sign) int p256_sign(void) { return from_io(0); }

/*
 * A nonce made ahead of a signature (`p256_sign_finish`), off the path of the handshake that
 * will use it: in io[0..32) d, io[32..64) 32 random bytes, io[160..192) 32 random bytes to
 * blind the inversion; out io[192..224) r and io[224..256) k^-1 in Montgomery form. k comes
 * from RFC 6979's generator with the random bytes in place of the digest: it depends on the
 * key and on fresh randomness, not on the message, which is not known yet. Returns 1; -1 when
 * d is not in [1, n - 1]; 0 if no nonce served. The inputs are wiped.
 */
EXPORT(p256_nonce) int p256_nonce(void) { return from_io(1); }

/*
 * The signature with a nonce of `p256_nonce`: in io[0..32) d, io[32..64) the leftmost 256 bits
 * of the digest, io[192..224) r and io[224..256) k^-1 R; out io[96..128) r, io[128..160) s.
 * Returns 1; -1 when d is not in [1, n - 1]; 0 when s is zero (draw another nonce). The inputs
 * are wiped: a nonce serves one signature.
 */
EXPORT(p256_sign_finish) int p256_sign_finish(void) {
  u32 d[8], z[8], r[8], kinv[8], s[8];
  load(d, io);
  load(z, io + 32);
  load(r, io + 192);
  load(kinv, io + 224);
  wipe(io, 64);
  wipe(io + 192, 64);
  int result = -1;
  if (mask_in_range(d, N) & 1) { /* an invalid key, not a secret bit */
    reduce_once(z, z, 0, N);
    result = sign_finish(s, r, kinv, d, z) & 1;
    store(io + 96, r);
    store(io + 128, s);
  }
  wipe(d, sizeof d);
  wipe(z, sizeof z);
  wipe(kinv, sizeof kinv);
  wipe(s, sizeof s);
  return result;
}

/*
 * One signature attempt with a given nonce, for the tests: in io[0..32) d, io[32..64) z,
 * io[64..96) k, io[160..192) blinding bytes; out r and s as p256_sign. Returns 1, or 0 when
 * k or d is out of range or r or s is zero.
 */
EXPORT(p256_sign_with_nonce) int p256_sign_with_nonce(void) {
  if (!ready) build_table();
  u32 d[8], z[8], k[8], r[8], s[8], bn[8];
  load(d, io);
  load(z, io + 32);
  load(k, io + 64);
  load_blind(bn, io + 160, N);
  wipe(io, 96);
  reduce_once(z, z, 0, N);
  u32 ok = mask_in_range(d, N) & sign_with(r, s, d, z, k, bn);
  store(io + 96, r);
  store(io + 128, s);
  wipe(d, sizeof d);
  wipe(k, sizeof k);
  burn_stack();
  return ok & 1;
}

/* ---- nonces in batches ---- */

/* Most nonces `p256_nonces` makes in one call. */
#define NB_MAX 16
/* Nonce i's 32 random bytes in, at 64 i; its r || k^-1 R out, at 64 i. */
static u8 nb_io_buf[NB_MAX * 64] __attribute__((aligned(16)));
/* Per nonce: the random bytes (h), X and Z of k G, k R, and the running products. */
static u32 nb_h[NB_MAX][8], nb_x[NB_MAX][8], nb_z[NB_MAX][8], nb_k[NB_MAX][8], nb_p[NB_MAX][8];

EXPORT(p256_nb_io) u8 *p256_nb_io(void) { return nb_io_buf; }

/*
 * `count` nonces as `p256_nonce` makes them, with the two inversions of each shared by the
 * batch (Montgomery's trick): the Z of every k G inverted at once (Fermat, constant time), and
 * every k (blinded, as one nonce's). Each nonce's k is the first candidate of its own RFC 6979
 * generator; the rare one that does not serve (a k out of range, probability about 2^-32, or a
 * zero r) is made again alone by `rfc6979`, which goes on to the next candidate. Bit i of
 * `force` makes nonce i so too (for the tests: no input is known to reach that path).
 */
static int nonces_batch(const u32 d[8], const u32 bn[8], int count, u32 force) {
  int redo[NB_MAX];
  u32 k[8], t[8], inv[8];
  point q;
  drbg g;
  for (int i = 0; i < count; i++) {
    load(nb_h[i], nb_io_buf + 64 * i);
    reduce_once(nb_h[i], nb_h[i], 0, N);
    drbg_init(&g, d, nb_h[i]);
    drbg_candidate(k, &g);
    u32 ok = mask_in_range(k, N);
    redo[i] = !(ok & 1) || ((force >> i) & 1); /* the candidate's rejection, not a secret */
    /* A rejected k becomes 1 here, so the batch stays invertible; its slot is made again. */
    for (int w = 0; w < 8; w++) k[w] = (k[w] & ok) | ((u32)(w == 0) & ~ok);
    base_mul(&q, k);
    copy8(nb_x[i], q.x);
    copy8(nb_z[i], q.z);
    fn_mul(nb_k[i], k, R2N);
  }
  /* Z_i^-1 = (Z_0 ... Z_i-1) (Z_0 ... Z_count-1)^-1 (Z_i+1 ... ): no Z is 0 for 1 <= k < n. */
  copy8(nb_p[0], nb_z[0]);
  for (int i = 1; i < count; i++) fp_mul(nb_p[i], nb_p[i - 1], nb_z[i]);
  fp_inv(inv, nb_p[count - 1]);
  for (int i = count - 1; i >= 0; i--) {
    if (i > 0) {
      fp_mul(t, inv, nb_p[i - 1]);
      fp_mul(inv, inv, nb_z[i]);
    } else {
      copy8(t, inv);
    }
    fp_mul(t, nb_x[i], t);
    /* r = x mod n: x < p < 2n. */
    reduce_once(nb_x[i], t, 0, N);
  }
  /* The same for k mod n, in Montgomery form: P_i = (k_0 ... k_i) R. */
  copy8(nb_p[0], nb_k[0]);
  for (int i = 1; i < count; i++) fn_mul(nb_p[i], nb_p[i - 1], nb_k[i]);
  u32 one[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  fn_mul(t, nb_p[count - 1], one);
  fn_inv_blinded(inv, t, bn);
  for (int i = count - 1; i >= 0; i--) {
    if (i > 0) {
      fn_mul(t, inv, nb_p[i - 1]);
      fn_mul(inv, inv, nb_k[i]);
    } else {
      copy8(t, inv);
    }
    u32 any_r = 0;
    for (int w = 0; w < 8; w++) any_r |= nb_x[i][w];
    if (any_r == 0) redo[i] = 1; /* a zero r: public, and in practice never */
    store(nb_io_buf + 64 * i, nb_x[i]);
    store(nb_io_buf + 64 * i + 32, t);
  }
  int result = 1;
  for (int i = 0; i < count; i++) {
    if (!redo[i]) continue;
    if (rfc6979(d, nb_h[i], bn, 1) != 1) result = 0;
    for (int w = 0; w < 64; w++) nb_io_buf[64 * i + w] = io[192 + w];
    wipe(io + 192, 64);
  }
  wipe(k, sizeof k);
  wipe(t, sizeof t);
  wipe(inv, sizeof inv);
  wipe(&q, sizeof q);
  wipe(&g, sizeof g);
  wipe(nb_h, 32 * count);
  wipe(nb_x, 32 * count);
  wipe(nb_z, 32 * count);
  wipe(nb_k, 32 * count);
  wipe(nb_p, 32 * count);
  return result;
}

/*
 * `count` (1 to NB_MAX) nonces made ahead, as `p256_nonce` makes one: in io[0..32) d,
 * io[160..192) 32 random bytes to blind the inversion, and nonce i's 32 random bytes at
 * p256_nb_io() + 64 i; out r and k^-1 R at p256_nb_io() + 64 i. Returns 1; -1 when d is not in
 * [1, n - 1]; 0 for a count out of range or if no nonce served. The inputs are wiped.
 */
static int nonces_from_io(int count, u32 force) {
  if (count < 1 || count > NB_MAX) return 0;
  if (!ready) build_table();
  u32 d[8], bn[8];
  load(d, io);
  load_blind(bn, io + 160, N);
  wipe(io, 64);
  wipe(io + 160, 32);
  int result = -1;
  if (mask_in_range(d, N) & 1) result = nonces_batch(d, bn, count, force); /* an invalid key */
  if (result != 1) wipe(nb_io_buf, 64 * count);
  wipe(d, sizeof d);
  wipe(bn, sizeof bn);
  burn_stack();
  return result;
}

EXPORT(p256_nonces) int p256_nonces(int count) { return nonces_from_io(count, 0); }

/* `p256_nonces` with the nonces of the bits of `force` made alone, for the tests. */
EXPORT(p256_nonces_forcing) int p256_nonces_forcing(int count, u32 force) {
  return nonces_from_io(count, force);
}

/* k * G: in io[0..32) k (1 <= k < n); out io[32..96) x || y. Returns 0 for k out of range. */
EXPORT(p256_base_mul) int p256_base_mul(void) {
  if (!ready) build_table();
  u32 k[8], x[8], y[8];
  load(k, io);
  wipe(io, 32);
  u32 ok = mask_in_range(k, N);
  point q;
  base_mul(&q, k);
  to_affine(x, y, &q);
  store(io + 32, x);
  store(io + 64, y);
  wipe(k, 32);
  wipe(&q, sizeof q);
  burn_stack();
  return ok & 1;
}

/*
 * Field and scalar arithmetic for the tests: a = io[0..32), b = io[32..64) as 256-bit
 * integers, each first reduced once (so values in [m, 2^256) are accepted); out io[64..96).
 * op: 0 add, 1 sub, 2 mul, 3 inverse of a (Fermat; 0 for a = 0), 4 square of a, 5 inverse
 * of a (binary Euclid; 0 for a = 0), all mod p; 8 to 11 add, sub, mul and inverse (binary
 * Euclid) mod n.
 */
EXPORT(p256_field_op) void p256_field_op(int op) {
  int scalar = op >= 8;
  const u32 *m = scalar ? N : P;
  u32 a[8], b[8], r[8];
  load(a, io);
  load(b, io + 32);
  reduce_once(a, a, 0, m);
  reduce_once(b, b, 0, m);
  switch (op) {
  case 0:
  case 8:
    mod_add(r, a, b, m);
    break;
  case 1:
  case 9:
    mod_sub(r, a, b, m);
    break;
  case 2:
    fp_mul(r, a, b);
    break;
  case 3:
    fp_inv(r, a);
    break;
  case 4:
    fp_sqr(r, a);
    break;
  case 5:
    inv_vartime(r, a, P, 1);
    break;
  case 10:
    fn_mul(a, a, R2N);
    fn_mul(r, a, b);
    break;
  case 11:
    inv_vartime(r, a, N, N0INV);
    break;
  default:
    for (int i = 0; i < 8; i++) r[i] = 0;
  }
  store(io + 64, r);
}
