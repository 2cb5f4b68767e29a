/* Compiled CPU loops of NSNQuant's fused decode attention, reading a KVStore's block pool through its block table.
   One call covers every (batch row, KV head) pair, in parallel with OpenMP; the G query heads of a KV head are handled together.
   Pool layout of one side (keys or values), slot s, head h, block of W tokens, n8 = d/8 sub-vectors:
     codes  [P, H, W, n8] u8      signs  [P, H, W, n8] u8 (2 bits)     scale [P, H, W] fp16
     ncodes [P, H, W/2] u8 (4-bit norms, low nibble first)              nstats [P, H, 2] fp16 (step, min)
     mcodes [P, H, d/2] u8 (4-bit means)                                mstats [P, H, d/group, 2] fp16 (step, min)
   Row b holds nblk[b] blocks, slots table[b * tstride + j]. */
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

typedef float v4 __attribute__((vector_size(16), aligned(4)));
typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t vi8 __attribute__((vector_size(32), aligned(4)));
#define INL static inline __attribute__((always_inline))

INL float h2f(uint16_t h) {           /* IEEE half -> float, exact (normals, subnormals, zeros, inf) */
  uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 31, m = h & 1023, u;
  if (e == 31) u = s | 0x7f800000u | (m << 13);
  else if (e) u = s | ((e + 112) << 23) | (m << 13);
  else if (m) { e = 113; while (!(m & 1024)) { m <<= 1; e--; } u = s | (e << 23) | ((m & 1023) << 13); }
  else u = s;
  float f; memcpy(&f, &u, 4); return f;
}
INL void halves(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(src + i))));
#endif
  for (; i < n; i++) dst[i] = h2f(src[i]);
}

/* sign masks: SGN[s][k] has the float sign bit set where bit k of sign byte s is set (coordinate k negative) */
static vi8 SGN[256];
static int SGN_READY = 0;
static void init_signs(void) {
  if (SGN_READY) return;
  for (int s = 0; s < 256; s++) for (int k = 0; k < 8; k++) SGN[s][k] = ((s >> k) & 1) ? (int32_t)0x80000000u : 0;
  SGN_READY = 1;
}
INL v8 signed_cw(const float* cb, uint8_t c, uint8_t s) {
  v8 w = *(const v8*)(cb + 8 * (int64_t)c);
  return (v8)((vi8)w ^ SGN[s]);
}
INL float hsum8(v8 a) { return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); }

/* one block's dequantized norms n_t and adaptive scales s'_t, W tokens */
INL void block_norms(const uint8_t* nc, const uint16_t* ns, const uint16_t* sc, int64_t W, float* nrm, float* scl) {
  float step = h2f(ns[0]), lo = h2f(ns[1]);
  for (int64_t w = 0; w < W; w++) nrm[w] = lo + (float)((nc[w >> 1] >> ((w & 1) * 4)) & 15) * step;
  halves(sc, scl, W);
}

#define MAXW 256
#define CHUNK 16   /* blocks whose LUT sums (or histogram weights) are computed together */
INL uint32_t load4(const uint8_t* p) { uint32_t x; memcpy(&x, p, 4); return x; }
#ifndef LUT_NQ4
#define LUT_NQ4 4   /* sub-vectors per pass at GP = 4: a 16 KB slice of the LUT (or histogram) */
#endif
#define NEG_INF (-__builtin_inff())

/* the dequantized 4-bit mean [D] of pool block `base` (slot * H + head) */
INL void block_mean(const uint8_t* mcodes, const uint16_t* mstats, int64_t base, int64_t D, int64_t group, float* mu) {
  int64_t ng = D / group; float st[256];
  const uint8_t* mc = mcodes + base * (D / 2);
  halves(mstats + base * ng * 2, st, ng * 2);
  for (int64_t g = 0; g < ng; g++) {
    float step = st[2 * g], lo = st[2 * g + 1]; float* m = mu + g * group; const uint8_t* c = mc + g * group / 2;
    for (int64_t k = 0; k < group / 2; k++) { m[2 * k] = lo + (float)(c[k] & 15) * step; m[2 * k + 1] = lo + (float)(c[k] >> 4) * step; }
  }
}

/* ---------------------------------------------------------------- means: dequantized block means, keys rotated to the block start
   out[((b * H + h) * NB + j) * D + c]: mu (values), or RoPE_{p0}(mu) without the attention scaling (keys), p0 = bpos[slot];
   with `interleave` the channel pairs (f, f + D/2) are written as (2f, 2f + 1);
   E: [positions, D] = alpha*cos | alpha*sin halves of the model's RoPE; rows j >= nblk[b] are zero. */
void nsn_means(const uint8_t* mcodes, const uint16_t* mstats, const int64_t* table, int64_t tstride, const int64_t* nblk,
               const int64_t* bpos, const float* E, float inv_alpha, int rotate, int interleave, float* out,
               int64_t B, int64_t H, int64_t NB, int64_t D, int64_t group, int nt) {
  int64_t half = D / 2;
  #pragma omp parallel for num_threads(nt) schedule(static) collapse(2)
  for (int64_t b = 0; b < B; b++) for (int64_t h = 0; h < H; h++) {
    float mu[1024];
    for (int64_t j = 0; j < NB; j++) {
      float* o = out + ((b * H + h) * NB + j) * D;
      if (j >= nblk[b]) { memset(o, 0, D * sizeof(float)); continue; }
      int64_t slot = table[b * tstride + j], base = slot * H + h;
      block_mean(mcodes, mstats, base, D, group, mu);
      const float* e = rotate ? E + bpos[slot] * D : NULL;
      for (int64_t f = 0; f < half; f++) {                       /* channel pair (f, f + d/2), optionally rotated */
        float x = mu[f], y = mu[half + f];
        if (rotate) { float cs = e[f] * inv_alpha, sn = e[half + f] * inv_alpha; float t = x * cs - y * sn; y = y * cs + x * sn; x = t; }
        if (interleave) { o[2 * f] = x; o[2 * f + 1] = y; } else { o[f] = x; o[half + f] = y; }
      }
    }
  }
}

/* ---------------------------------------------------------------- scores
   out[b * ob + h * oh + g * og + j * W + w] = n_t (s'_t <Fq_g, c_t> + ms[((b * H + h) * NB + j) * G * W + g * W + w]),
   -inf for blocks j >= nblk[b]. tab: the rotated queries Fq [B, H, G, D]; cb: the codebook [256, 8] (magnitudes at 2 bits). */
/* 1 bit: the LUT of one (row, head) is n8 x 256 x GP floats (64 KB at d = 128, GP = 4), more than L1; the lookups run in passes over
   `nq` sub-vectors at a time (a 16 KB slice), accumulating into a per-token buffer. */
#define SCORES1(V, NQ)                                                                                              \
INL void lut_pass_##V(const uint8_t* c, const V* L, V* acc, int64_t W, int64_t n8, int64_t i0) {                  \
  const V* L0 = L + i0 * 256; const uint8_t* c0 = c + i0;                                                           \
  if (NQ == 4 && i0 + 4 <= n8) { for (int64_t w = 0; w < W; w++) { uint32_t cc = load4(c0 + w * n8);             \
      acc[w] += (L0[cc & 255] + L0[256 + ((cc >> 8) & 255)]) + (L0[512 + ((cc >> 16) & 255)] + L0[768 + (cc >> 24)]); } \
    return; }                                                                                                        \
  for (int64_t w = 0; w < W; w++) { const uint8_t* ct = c0 + w * n8; V a = {0};                                     \
    for (int i = 0; i < NQ && i0 + i < n8; i++) a += L0[i * 256 + ct[i]];                    \
    acc[w] += a; } }
SCORES1(v4, LUT_NQ4) SCORES1(v8, LUT_NQ4 / 2) SCORES1(v16, LUT_NQ4 / 4)

/* 2 bits (n8 a multiple of 4): the horizontal sums of 8 tokens' lane-wise partial dot products are done together (a transpose-add),
   so they cost about one instruction per token and query head. */
INL v8 hsum8x8(const v8* a) {            /* lane t = sum of the lanes of a[t] */
#if defined(__AVX2__)
  __m256 t0 = _mm256_hadd_ps((__m256)a[0], (__m256)a[1]), t1 = _mm256_hadd_ps((__m256)a[2], (__m256)a[3]);
  __m256 t2 = _mm256_hadd_ps((__m256)a[4], (__m256)a[5]), t3 = _mm256_hadd_ps((__m256)a[6], (__m256)a[7]);
  __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return (v8)_mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
#else
  v8 r; for (int t = 0; t < 8; t++) r[t] = hsum8(a[t]); return r;
#endif
}
/* NI sub-vectors at a time (NI * GG rotated-query vectors held in registers) for every token of the block; per token and query
   head a lane-wise partial sum in `part`, reduced 8 tokens at a time at the end. */
#define SCORES2(GG, NI)                                                                                              \
INL void scores2_##GG(const uint8_t* c, const uint8_t* sg, const float* cb, const float* fq, const float* ms,      \
                      const float* nrm, const float* scl, float* o, int64_t og, int64_t W, int64_t n8, int64_t D) {  \
  v8 part[MAXW][GG];                                                                                                 \
  for (int64_t i0 = 0; i0 < n8; i0 += NI) {                                                                          \
    v8 f[NI][GG];                                                                                                    \
    for (int ii = 0; ii < NI; ii++) for (int g = 0; g < GG; g++) f[ii][g] = *(const v8*)(fq + g * D + 8 * (i0 + ii)); \
    for (int64_t w = 0; w < W; w++) {                                                                                \
      v8 a[GG]; for (int g = 0; g < GG; g++) a[g] = i0 ? part[w][g] : (v8){0};                                       \
      uint32_t cc = load4(c + w * n8 + i0), ss = load4(sg + w * n8 + i0);                                            \
      for (int ii = 0; ii < NI; ii++) { v8 cw = signed_cw(cb, (cc >> (8 * ii)) & 255, (ss >> (8 * ii)) & 255);       \
        for (int g = 0; g < GG; g++) a[g] += cw * f[ii][g]; }                                                        \
      for (int g = 0; g < GG; g++) part[w][g] = a[g]; } }                                                            \
  for (int64_t w0 = 0; w0 < W; w0 += 8) { int64_t n = W - w0 < 8 ? W - w0 : 8;                                      \
    for (int g = 0; g < GG; g++) { v8 t8[8]; for (int t = 0; t < 8; t++) t8[t] = t < n ? part[w0 + t][g] : (v8){0};  \
      v8 sum = hsum8x8(t8);                                                                                          \
      for (int64_t t = 0; t < n; t++) o[g * og + w0 + t] = nrm[w0 + t] * (scl[w0 + t] * sum[t] + ms[g * W + w0 + t]); } } }
SCORES2(1, 4) SCORES2(2, 4) SCORES2(3, 4) SCORES2(4, 4) SCORES2(5, 2) SCORES2(6, 2) SCORES2(7, 2) SCORES2(8, 2)
typedef void (*scores2_fn)(const uint8_t*, const uint8_t*, const float*, const float*, const float*, const float*, const float*,
                           float*, int64_t, int64_t, int64_t, int64_t);
static const scores2_fn SCORES2_BY_G[8] = {0, scores2_1, scores2_2, scores2_3, scores2_4, scores2_5, scores2_6, scores2_7};

INL int64_t lut_chunk(int64_t GP) { return GP == 4 ? LUT_NQ4 : GP == 8 ? LUT_NQ4 / 2 : LUT_NQ4 / 4; }

/* the scores of one (row, head): out[g * og + j * W + w] for j < NB */
static void scores_bh(int bits, const uint8_t* codes, const uint8_t* signs, const uint16_t* scale, const uint8_t* ncodes,
                      const uint16_t* nstats, const int64_t* trow, int64_t nb, int64_t h, int64_t H, const float* fqh,
                      const float* cb, const float* cbt, const float* msbh, float* o, int64_t og,
                      int64_t NB, int64_t G, int64_t GP, int64_t W, int64_t n8) {
  int64_t D = 8 * n8, nq = lut_chunk(GP);
  float nrm[MAXW], scl[MAXW];
  float* acc = bits == 1 ? (float*)malloc((CHUNK * W * GP + 16) * sizeof(float)) : NULL;
  float* L = NULL;
  if (bits == 1) {                                   /* LUT[i, c, g] = <(Fq_g)_i, cb_c>, built here for this (row, head) */
    L = (float*)malloc((n8 * 256 * GP + 16) * sizeof(float));
    float t[256];
    for (int64_t i = 0; i < n8; i++) for (int64_t g = 0; g < GP; g++) {       /* lanes g >= G stay zero */
      const float* f = fqh + g * D + 8 * i;
      for (int64_t c = 0; c < 256; c++) t[c] = 0.f;
      if (g < G) for (int k = 0; k < 8; k++) { float x = f[k]; const float* col = cbt + k * 256; for (int64_t c = 0; c < 256; c++) t[c] += x * col[c]; }
      for (int64_t c = 0; c < 256; c++) L[(i * 256 + c) * GP + g] = t[c];
    }
  }
  for (int64_t j = 0; j < NB; j++) {
    float* oj = o + j * W;
    if (j >= nb) { for (int64_t g = 0; g < G; g++) for (int64_t w = 0; w < W; w++) oj[g * og + w] = NEG_INF; continue; }
    if (bits == 1 && j % CHUNK == 0) {          /* <Fq_g, c_t> for the next CHUNK blocks, sub-vector slice by slice */
      int64_t j1 = j + CHUNK < nb ? j + CHUNK : nb;
      memset(acc, 0, (j1 - j) * W * GP * sizeof(float));
      for (int64_t i0 = 0; i0 < n8; i0 += nq)
        for (int64_t jj = j; jj < j1; jj++) {
          const uint8_t* c = codes + (trow[jj] * H + h) * W * n8; float* a = acc + (jj - j) * W * GP;
          if (GP == 4) lut_pass_v4(c, (const v4*)L, (v4*)a, W, n8, i0);
          else if (GP == 8) lut_pass_v8(c, (const v8*)L, (v8*)a, W, n8, i0);
          else lut_pass_v16(c, (const v16*)L, (v16*)a, W, n8, i0);
        }
    }
    int64_t base = trow[j] * H + h;
    block_norms(ncodes + base * (W / 2), nstats + base * 2, scale + base * W, W, nrm, scl);
    const float* m = msbh + j * G * W;
    if (bits == 1) {
      const float* a = acc + (j % CHUNK) * W * GP;
      for (int64_t g = 0; g < G; g++) for (int64_t w = 0; w < W; w++) oj[g * og + w] = nrm[w] * (scl[w] * a[w * GP + g] + m[g * W + w]);
      continue;
    }
    const uint8_t* c = codes + base * W * n8; const uint8_t* s = signs + base * W * n8; const float* fq = fqh;
    if (G < 8) { SCORES2_BY_G[G](c, s, cb, fq, m, nrm, scl, oj, og, W, n8, D); continue; }
    for (int64_t g0 = 0; g0 < G; g0 += 8) {          /* 8 query heads at a time, a last chunk padded with zeros */
      int64_t gn = G - g0 < 8 ? G - g0 : 8;
      float tmp[8 * MAXW], fpad[8 * 1024], mpad[8 * MAXW];
      const float* f8 = fq + g0 * D; const float* m8 = m + g0 * W;
      if (gn < 8) { memset(fpad, 0, 8 * D * sizeof(float)); memcpy(fpad, f8, gn * D * sizeof(float)); f8 = fpad;
                    memset(mpad, 0, 8 * W * sizeof(float)); memcpy(mpad, m8, gn * W * sizeof(float)); m8 = mpad; }
      scores2_8(c, s, cb, f8, m8, nrm, scl, tmp, MAXW, W, n8, D);
      for (int64_t g = 0; g < gn; g++) for (int64_t w = 0; w < W; w++) oj[(g0 + g) * og + w] = tmp[g * MAXW + w];
    }
  }
  free(acc); free(L);
}

static void transpose_cb(const float* cb, float* cbt) { for (int64_t c = 0; c < 256; c++) for (int k = 0; k < 8; k++) cbt[k * 256 + c] = cb[8 * c + k]; }

void nsn_scores(int bits, const uint8_t* codes, const uint8_t* signs, const uint16_t* scale, const uint8_t* ncodes,
                const uint16_t* nstats, const int64_t* table, int64_t tstride, const int64_t* nblk,
                const float* tab, const float* cb, const float* ms, float* out, int64_t ob, int64_t oh, int64_t og,
                int64_t B, int64_t H, int64_t NB, int64_t G, int64_t GP, int64_t W, int64_t n8, int nt) {
  init_signs();
  float cbt[8 * 256]; transpose_cb(cb, cbt);          /* the codebook transposed, for building LUTs */
  #pragma omp parallel for num_threads(nt) schedule(dynamic) collapse(2)
  for (int64_t b = 0; b < B; b++) for (int64_t h = 0; h < H; h++) {
    int64_t nb = nblk[b] < NB ? nblk[b] : NB;
    scores_bh(bits, codes, signs, scale, ncodes, nstats, table + b * tstride, nb, h, H, tab + (b * H + h) * G * 8 * n8, cb, cbt,
              ms + (b * H + h) * NB * G * W, out + b * ob + h * oh, og, NB, G, GP, W, n8);
  }
}

/* ---------------------------------------------------------------- values
   wn_t = p_t n_t (p[b * pb + h * ph + g * pg + j * W + w]); bsum[((b * H + h) * GP + g) * NB + j] = sum_{t in block j} wn_t.
   acc[(b * H + h), g, :] = sum_t wn_t s'_t c_t (Hadamard domain): at 1 bit through a histogram of wn_t s'_t per sub-vector and
   code (then times the codebook), at 2 bits with the signed codewords. acc and bsum are zeroed by the caller. */
#define VALUES1(V, NQ)                                                                                              \
INL void hist_pass_##V(const uint8_t* c, const V* wt, V* hist, int64_t W, int64_t n8, int64_t i0) {               \
  V* H0 = hist + i0 * 256; const uint8_t* c0 = c + i0;                                                              \
  if (NQ == 4 && i0 + 4 <= n8) { for (int64_t w = 0; w < W; w++) { V x = wt[w]; uint32_t cc = load4(c0 + w * n8); \
      H0[cc & 255] += x; H0[256 + ((cc >> 8) & 255)] += x; H0[512 + ((cc >> 16) & 255)] += x; H0[768 + (cc >> 24)] += x; } \
    return; }                                                                                                        \
  for (int64_t w = 0; w < W; w++) { V x = wt[w]; const uint8_t* ct = c0 + w * n8;                                   \
    for (int i = 0; i < NQ && i0 + i < n8; i++) H0[i * 256 + ct[i]] += x; } }
VALUES1(v4, LUT_NQ4) VALUES1(v8, LUT_NQ4 / 2) VALUES1(v16, LUT_NQ4 / 4)

/* 2 bits: sub-vector by sub-vector, the weighted signed codewords of the block's tokens summed into 2 x GG accumulators
   (even and odd tokens: two independent FMA chains per query head) */
/* 2 bits: NI sub-vectors at a time, NI x GG accumulators in registers over the block's tokens (each token's GG weights loaded
   once per chunk) */
#define VALUES2(GG, NI)                                                                                              \
INL void values2_##GG(const uint8_t* c, const uint8_t* sg, const float* cb, const float* wt, int64_t GP,            \
                      float* acc, int64_t W, int64_t n8, int64_t D) {                                                \
  for (int64_t i0 = 0; i0 < n8; i0 += NI) {                                                                          \
    v8 a[NI][GG];                                                                                                    \
    for (int ii = 0; ii < NI; ii++) for (int g = 0; g < GG; g++) a[ii][g] = *(v8*)(acc + g * D + 8 * (i0 + ii));     \
    for (int64_t w = 0; w < W; w++) {                                                                                \
      uint32_t cc = load4(c + w * n8 + i0), ss = load4(sg + w * n8 + i0);                                            \
      for (int ii = 0; ii < NI; ii++) { v8 cw = signed_cw(cb, (cc >> (8 * ii)) & 255, (ss >> (8 * ii)) & 255);       \
        for (int g = 0; g < GG; g++) a[ii][g] += wt[w * GP + g] * cw; } }                                            \
    for (int ii = 0; ii < NI; ii++) for (int g = 0; g < GG; g++) *(v8*)(acc + g * D + 8 * (i0 + ii)) = a[ii][g]; } }
VALUES2(1, 4) VALUES2(2, 4) VALUES2(3, 4) VALUES2(4, 4) VALUES2(5, 2) VALUES2(6, 2) VALUES2(7, 2) VALUES2(8, 2)
typedef void (*values2_fn)(const uint8_t*, const uint8_t*, const float*, const float*, int64_t, float*, int64_t, int64_t, int64_t);
static const values2_fn VALUES2_BY_G[8] = {0, values2_1, values2_2, values2_3, values2_4, values2_5, values2_6, values2_7};

/* the values of one (row, head): acc [GP, D] (Hadamard domain) and bs [GP, NB] from the weights p[g * pg + j * W + w] */
static void values_bh(int bits, const uint8_t* codes, const uint8_t* signs, const uint16_t* scale, const uint8_t* ncodes,
                      const uint16_t* nstats, const int64_t* trow, int64_t nb, int64_t h, int64_t H, const float* pp, int64_t pg,
                      const float* cb, float* out_acc, float* bs, int64_t NB, int64_t G, int64_t GP, int64_t W, int64_t n8) {
  int64_t D = 8 * n8, nq = lut_chunk(GP);
  float nrm[MAXW], scl[MAXW];
  float* a = bits == 1 ? (float*)calloc(n8 * 256 * GP + 16, sizeof(float)) : out_acc;   /* 1 bit: the histogram */
  float* wt = (float*)malloc((CHUNK * W * GP + 16) * sizeof(float));                    /* p_t n_t s'_t per token and query head */
  for (int64_t j0 = 0; j0 < nb; j0 += CHUNK) {
    int64_t j1 = j0 + CHUNK < nb ? j0 + CHUNK : nb;
    for (int64_t j = j0; j < j1; j++) {
      int64_t base = trow[j] * H + h;
      block_norms(ncodes + base * (W / 2), nstats + base * 2, scale + base * W, W, nrm, scl);
      float* wj = wt + (j - j0) * W * GP;
      for (int64_t g = 0; g < GP; g++) {
        const float* pg_ = pp + g * pg + j * W; float sum = 0.f;
        for (int64_t w = 0; w < W; w++) { float wn = g < G ? pg_[w] * nrm[w] : 0.f; sum += wn; wj[w * GP + g] = wn * scl[w]; }
        bs[g * NB + j] += sum;
      }
    }
    if (bits == 1) {
      for (int64_t i0 = 0; i0 < n8; i0 += nq)
        for (int64_t j = j0; j < j1; j++) {
          const uint8_t* c = codes + (trow[j] * H + h) * W * n8; const float* wj = wt + (j - j0) * W * GP;
          if (GP == 4) hist_pass_v4(c, (const v4*)wj, (v4*)a, W, n8, i0);
          else if (GP == 8) hist_pass_v8(c, (const v8*)wj, (v8*)a, W, n8, i0);
          else hist_pass_v16(c, (const v16*)wj, (v16*)a, W, n8, i0);
        }
    } else {
      for (int64_t j = j0; j < j1; j++) {
        int64_t base = trow[j] * H + h;
        const uint8_t* c = codes + base * W * n8; const uint8_t* s = signs + base * W * n8; const float* wj = wt + (j - j0) * W * GP;
        if (G < 8) VALUES2_BY_G[G](c, s, cb, wj, GP, a, W, n8, D);
        else for (int64_t g0 = 0; g0 < G; g0 += 8) values2_8(c, s, cb, wj + g0, GP, a + g0 * D, W, n8, D);
      }
    }
  }
  if (bits == 1) {                                   /* sum_t wn_t s'_t c_t = hist x codebook */
    for (int64_t i = 0; i < n8; i++) {
      v8 o[16]; for (int64_t g = 0; g < GP; g++) o[g] = (v8){0};
      for (int64_t c = 0; c < 256; c++) { v8 w = *(const v8*)(cb + 8 * c); const float* x = a + (i * 256 + c) * GP;
        for (int64_t g = 0; g < GP; g++) o[g] += x[g] * w; }
      for (int64_t g = 0; g < GP; g++) *(v8*)(out_acc + g * D + 8 * i) = o[g];
    }
    free(a);
  }
  free(wt);
}

void nsn_values(int bits, const uint8_t* codes, const uint8_t* signs, const uint16_t* scale, const uint8_t* ncodes,
                const uint16_t* nstats, const int64_t* table, int64_t tstride, const int64_t* nblk,
                const float* p, int64_t pb, int64_t ph, int64_t pg, const float* cb, float* acc, float* bsum,
                int64_t B, int64_t H, int64_t NB, int64_t G, int64_t GP, int64_t W, int64_t n8, int nt) {
  init_signs();
  #pragma omp parallel for num_threads(nt) schedule(dynamic) collapse(2)
  for (int64_t b = 0; b < B; b++) for (int64_t h = 0; h < H; h++) {
    int64_t nb = nblk[b] < NB ? nblk[b] : NB;
    values_bh(bits, codes, signs, scale, ncodes, nstats, table + b * tstride, nb, h, H, p + b * pb + h * ph, pg, cb,
              acc + (b * H + h) * GP * 8 * n8, bsum + (b * H + h) * GP * NB, NB, G, GP, W, n8);
  }
}


/* ---------------------------------------------------------------- the whole decode step
   One call per layer: for every (row, KV head), the logits of its full-precision sinks and tail and of its packed blocks, one
   softmax over all of them, the values (full-precision tokens, codewords in the Hadamard domain rotated back with `rinv`, block
   means), normalized into out[b, h, g, :]. Full-precision K/V are float32 [B, H, S or C, D], valid below n_sink[b] / n_tail[b];
   plo (or NULL): per row, how many of its first packed tokens a sliding window hides. */
INL v8 vexp8(v8 x) {                 /* e^x, relative error < 2e-7 for x in [-87, 88]; 0 below -87 (and for -inf) */
  const v8 hi = {88.f, 88.f, 88.f, 88.f, 88.f, 88.f, 88.f, 88.f}, lo = {-87.f, -87.f, -87.f, -87.f, -87.f, -87.f, -87.f, -87.f};
  vi8 live = x >= lo;
  vi8 over = x > hi, under = x < lo;
  x = (v8)(((vi8)hi & over) | ((vi8)x & ~over)); x = (v8)(((vi8)lo & under) | ((vi8)x & ~under));
  v8 t = x * 1.44269504088896341f + 12582912.f, n = t - 12582912.f;          /* round(x / ln 2) */
  v8 r = x - n * 0.693359375f + n * 2.12194440e-4f;                          /* x - n ln 2, in two parts */
  v8 p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f; p = p * r + 4.1665795894e-2f; p = p * r + 1.6666665459e-1f; p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  vi8 e = (__builtin_convertvector(n, vi8) + 127) << 23;
  return (v8)(((vi8)p + (e - (127 << 23))) & live);
}
INL float dotf(const float* a, const float* b, int64_t D) {
  v8 s0 = {0}, s1 = {0}; int64_t d = 0;
  for (; d + 16 <= D; d += 16) { s0 += *(const v8*)(a + d) * *(const v8*)(b + d); s1 += *(const v8*)(a + d + 8) * *(const v8*)(b + d + 8); }
  for (; d < D; d += 8) s0 += *(const v8*)(a + d) * *(const v8*)(b + d);
  return hsum8(s0 + s1);
}

void nsn_attend(int kbits, int vbits,
                const uint8_t* kc, const uint8_t* ks, const uint16_t* ksc, const uint8_t* knc, const uint16_t* kns,
                const uint8_t* vc, const uint8_t* vs, const uint16_t* vsc, const uint8_t* vnc, const uint16_t* vns,
                const uint8_t* vmc, const uint16_t* vms, int64_t vgroup, const int64_t* table, int64_t tstride, const int64_t* nblk,
                const float* q, const float* fq, const float* ms, const float* cbk, const float* cbv, const float* rinv,
                const float* sk, const float* sv, const int64_t* nsink, int64_t S,
                const float* tk, const float* tv, const int64_t* ntail, int64_t C,
                const int64_t* plo, float* out, int64_t B, int64_t H, int64_t NB, int64_t G, int64_t GP, int64_t W, int64_t n8, int nt) {
  init_signs();
  int64_t D = 8 * n8, Lt = S + C + NB * W;
  float cbt[8 * 256]; transpose_cb(cbk, cbt);
  #pragma omp parallel for num_threads(nt) schedule(dynamic) collapse(2)
  for (int64_t b = 0; b < B; b++) for (int64_t h = 0; h < H; h++) {
    int64_t bh = b * H + h, nb = nblk[b] < NB ? nblk[b] : NB;
    const float* qh = q + bh * G * D;
    float* lg = (float*)malloc((G * Lt + 16) * sizeof(float));
    float* o = (float*)calloc(G * D + 16, sizeof(float));
    for (int64_t g = 0; g < G; g++) {                        /* full-precision logits */
      float* l = lg + g * Lt;
      for (int64_t t = 0; t < S; t++) l[t] = t < nsink[b] ? dotf(qh + g * D, sk + (bh * S + t) * D, D) : NEG_INF;
      for (int64_t t = 0; t < C; t++) l[S + t] = t < ntail[b] ? dotf(qh + g * D, tk + (bh * C + t) * D, D) : NEG_INF;
    }
    if (NB) scores_bh(kbits, kc, ks, ksc, knc, kns, table + b * tstride, nb, h, H, fq + bh * G * D, cbk, cbt,
                      ms + bh * NB * G * W, lg + S + C, Lt, NB, G, GP, W, n8);
    if (NB && plo) for (int64_t g = 0; g < G; g++)           /* a sliding window hides the row's first plo[b] packed tokens */
      for (int64_t t = 0; t < plo[b] && t < nb * W; t++) lg[g * Lt + S + C + t] = NEG_INF;
    float sum[64];
    for (int64_t g = 0; g < G; g++) {                        /* softmax, unnormalized: weights e^(l - max) in place */
      float* l = lg + g * Lt; float m = NEG_INF;
      for (int64_t t = 0; t < Lt; t++) m = l[t] > m ? l[t] : m;
      v8 acc = {0}; int64_t t = 0;
      for (; t + 8 <= Lt; t += 8) { v8 e = vexp8(*(v8*)(l + t) - m); *(v8*)(l + t) = e; acc += e; }
      float s_ = hsum8(acc);
      for (; t < Lt; t++) { v8 x = {l[t] - m}; float e = vexp8(x)[0]; l[t] = e; s_ += e; }
      sum[g] = s_;
    }
    for (int64_t g = 0; g < G; g++) {                        /* full-precision values */
      const float* l = lg + g * Lt; float* og_ = o + g * D;
      for (int64_t t = 0; t < S && t < nsink[b]; t++) { float w = l[t]; const float* v = sv + (bh * S + t) * D; for (int64_t d = 0; d < D; d++) og_[d] += w * v[d]; }
      for (int64_t t = 0; t < C && t < ntail[b]; t++) { float w = l[S + t]; const float* v = tv + (bh * C + t) * D; for (int64_t d = 0; d < D; d++) og_[d] += w * v[d]; }
    }
    if (nb) {
      float* acc = (float*)calloc(GP * D + 16, sizeof(float)); float* bs = (float*)calloc(GP * NB + 16, sizeof(float));
      values_bh(vbits, vc, vs, vsc, vnc, vns, table + b * tstride, nb, h, H, lg + S + C, Lt, cbv, acc, bs, NB, G, GP, W, n8);
      float mu[1024];
      for (int64_t j = 0; j < nb; j++) {                     /* block means, weighted by their blocks' sums */
        block_mean(vmc, vms, table[b * tstride + j] * H + h, D, vgroup, mu);
        for (int64_t g = 0; g < G; g++) { float w = bs[g * NB + j]; float* og_ = o + g * D; for (int64_t d = 0; d < D; d++) og_[d] += w * mu[d]; }
      }
      for (int64_t g = 0; g < G; g++) {                      /* codeword sums back from the Hadamard domain: acc @ rinv */
        float* og_ = o + g * D; const float* a = acc + g * D;
        for (int64_t d = 0; d < D; d++) { float x = a[d]; const float* r = rinv + d * D; for (int64_t e = 0; e < D; e++) og_[e] += x * r[e]; }
      }
      free(acc); free(bs);
    }
    for (int64_t g = 0; g < G; g++) { float inv = 1.f / sum[g]; for (int64_t d = 0; d < D; d++) out[(bh * G + g) * D + d] = o[g * D + d] * inv; }
    free(lg); free(o);
  }
}
