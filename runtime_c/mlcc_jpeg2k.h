/* mlcc_jpeg2k.h: JPEG 2000 for mlcc_image.h (ITU-T T.800), decoded as OpenJPEG does (which Pillow uses).
 *
 * A JP2 file (its jp2c box) or a bare codestream. Read: the reversible path (5/3 wavelet, no quantisation:
 * Pillow's default, lossless) and the irreversible one (9/7 wavelet, scalar quantisation, in single precision
 * with OpenJPEG's constants and order of operations), with their colour transforms or none; 1 to 4 components
 * of 8 unsigned bits at full resolution (alpha and a fourth component are dropped); any number of tiles,
 * tile-parts, quality layers, resolution levels, code-block sizes and precinct sizes; the five progression
 * orders; SOP and EPH markers. Coefficients a file leaves unrefined are reconstructed at the middle of their
 * interval, as OpenJPEG does. Refused (MLCC_ERR_UNSUPPORTED_DATA): code-block coding options, subsampled or
 * signed components or other precisions, region-of-interest shifts, progression changes, packed headers,
 * palettes and YCC colour spaces. */
#ifndef MLCC_JPEG2K_H
#define MLCC_JPEG2K_H

/* ---- MQ arithmetic decoder (Annex C) ---- */

/* Per state: Qe, next state after an MPS, after an LPS, and whether an LPS switches the MPS. */
static const uint16_t mlcc_mq_qe[47] = {
  0x5601, 0x3401, 0x1801, 0x0ac1, 0x0521, 0x0221, 0x5601, 0x5401, 0x4801, 0x3801, 0x3001, 0x2401,
  0x1c01, 0x1601, 0x5601, 0x5401, 0x5101, 0x4801, 0x3801, 0x3401, 0x3001, 0x2801, 0x2401, 0x2201,
  0x1c01, 0x1801, 0x1601, 0x1401, 0x1201, 0x1101, 0x0ac1, 0x09c1, 0x08a1, 0x0521, 0x0441, 0x02a1,
  0x0221, 0x0141, 0x0111, 0x0085, 0x0049, 0x0025, 0x0015, 0x0009, 0x0005, 0x0001, 0x5601};
static const uint8_t mlcc_mq_nmps[47] = {1,  2,  3,  4,  5,  38, 7,  8,  9,  10, 11, 12, 13, 29, 15, 16,
                                         17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
                                         33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 45, 46};
static const uint8_t mlcc_mq_nlps[47] = {1,  6,  9,  12, 29, 33, 6,  14, 14, 14, 17, 18, 20, 21, 14, 14,
                                         15, 16, 17, 18, 19, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
                                         30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 46};

typedef struct {
  const uint8_t *s;
  int64_t n, at;   /* s[at] is the byte last read into c; bytes past n read as 0xff (a marker: no more data) */
  uint32_t a, c;
  int ct;
  uint8_t state[19], mps[19]; /* per context */
} mlcc_mq;

static int mlcc_mq_byte(const mlcc_mq *m, int64_t i) { return i < m->n ? m->s[i] : 0xff; }

static void mlcc_mq_bytein(mlcc_mq *m) {
  if (mlcc_mq_byte(m, m->at) == 0xff) {
    int next = mlcc_mq_byte(m, m->at + 1);
    if (next > 0x8f) {
      m->c += 0xff00, m->ct = 8; /* a marker: stay, feeding 1 bits */
    } else {
      ++m->at, m->c += (uint32_t)next << 9, m->ct = 7;
    }
  } else {
    ++m->at, m->c += (uint32_t)mlcc_mq_byte(m, m->at) << 8, m->ct = 8;
  }
}

static void mlcc_mq_init(mlcc_mq *m, const uint8_t *s, int64_t n) {
  m->s = s, m->n = n, m->at = 0;
  m->c = (uint32_t)mlcc_mq_byte(m, 0) << 16;
  mlcc_mq_bytein(m);
  m->c <<= 7, m->ct -= 7, m->a = 0x8000;
  memset(m->state, 0, sizeof m->state), memset(m->mps, 0, sizeof m->mps);
  m->state[0] = 4, m->state[17] = 3, m->state[18] = 46; /* all-zero neighbourhood, run length, uniform */
}

static inline int mlcc_mq_decode(mlcc_mq *m, int cx) {
  int st = m->state[cx], d;
  uint32_t qe = mlcc_mq_qe[st];
  m->a -= qe;
  if ((m->c >> 16) < qe) { /* LPS interval, unless the exchange makes it the MPS */
    if (m->a < qe) {
      d = m->mps[cx], m->state[cx] = mlcc_mq_nmps[st];
    } else {
      d = !m->mps[cx];
      if (st == 0 || st == 6 || st == 14) m->mps[cx] = (uint8_t)d; /* the states that switch */
      m->state[cx] = mlcc_mq_nlps[st];
    }
    m->a = qe;
  } else {
    m->c -= qe << 16;
    if (m->a & 0x8000) return m->mps[cx];
    if (m->a < qe) {
      d = !m->mps[cx];
      if (st == 0 || st == 6 || st == 14) m->mps[cx] = (uint8_t)d;
      m->state[cx] = mlcc_mq_nlps[st];
    } else {
      d = m->mps[cx], m->state[cx] = mlcc_mq_nmps[st];
    }
  }
  do { /* renormalise */
    if (m->ct == 0) mlcc_mq_bytein(m);
    m->a <<= 1, m->c <<= 1, --m->ct;
  } while (!(m->a & 0x8000));
  return d;
}

/* ---- tier 1: a code-block's coefficients from its coding passes (Annex D) ---- */

enum { MLCC_T1_SIG = 1, MLCC_T1_NEG = 2, MLCC_T1_VISIT = 4, MLCC_T1_REFINED = 8 };

typedef struct {
  int w, h, orient; /* orient: 0 LL, 1 HL, 2 LH, 3 HH */
  uint8_t *f;       /* (w + 2) x (h + 2) flags, a border of zeros around */
  uint8_t *nb;      /* the same layout: significant neighbours, horizontal + 4 vertical + 16 diagonal */
  int32_t *v;       /* w x h magnitudes, twice the value plus the midpoint bit, as OpenJPEG keeps them */
  mlcc_mq mq;
} mlcc_t1;

#define MLCC_T1_F(t, x, y) ((t)->f[((y) + 1) * ((t)->w + 2) + (x) + 1])

static inline int mlcc_t1_zc(const mlcc_t1 *t, int x, int y) { /* the zero-coding context, 0 to 8 */
  int n = t->nb[(y + 1) * (t->w + 2) + x + 1], h = n & 3, v = n >> 2 & 3, d = n >> 4;
  if (t->orient == 3) {
    int hv = h + v;
    return d >= 3 ? 8 : d == 2 ? (hv >= 1 ? 7 : 6) : d == 1 ? (hv >= 2 ? 5 : hv + 3) : (hv >= 2 ? 2 : hv);
  }
  if (t->orient == 1) {
    int swap = h;
    h = v, v = swap;
  }
  if (h == 2) return 8;
  if (h == 1) return v >= 1 ? 7 : d >= 1 ? 6 : 5;
  return v >= 1 ? 2 + v : d >= 2 ? 2 : d;
}

static void mlcc_t1_significant(mlcc_t1 *t, int x, int y, int p) { /* decodes the sign of a newly significant one */
  const uint8_t *f = &MLCC_T1_F(t, x, y);
  int s = t->w + 2;
#define MLCC_T1_CONTRIB(g) ((g) & MLCC_T1_SIG ? ((g) & MLCC_T1_NEG ? -1 : 1) : 0)
  int hc = MLCC_T1_CONTRIB(f[-1]) + MLCC_T1_CONTRIB(f[1]), vc = MLCC_T1_CONTRIB(f[-s]) + MLCC_T1_CONTRIB(f[s]);
#undef MLCC_T1_CONTRIB
  hc = hc < -1 ? -1 : hc > 1 ? 1 : hc, vc = vc < -1 ? -1 : vc > 1 ? 1 : vc;
  int flip = hc < 0 || (hc == 0 && vc < 0);
  if (flip) hc = -hc, vc = -vc;
  int cx = hc == 1 ? 12 + vc : 9 + (vc != 0);
  int neg = mlcc_mq_decode(&t->mq, cx) ^ flip;
  MLCC_T1_F(t, x, y) |= (uint8_t)(MLCC_T1_SIG | (neg ? MLCC_T1_NEG : 0));
  uint8_t *nb = &t->nb[(y + 1) * s + x + 1];
  nb[-1] += 1, nb[1] += 1, nb[-s] += 4, nb[s] += 4;
  nb[-s - 1] += 16, nb[-s + 1] += 16, nb[s - 1] += 16, nb[s + 1] += 16;
  t->v[y * t->w + x] = 3 << p; /* the bit, and the middle of what remains below it */
}

static void mlcc_t1_pass(mlcc_t1 *t, int kind, int p) { /* kind: 0 significance, 1 refinement, 2 cleanup */
  for (int y0 = 0; y0 < t->h; y0 += 4) {
    int y1 = y0 + 4 < t->h ? y0 + 4 : t->h;
    for (int x = 0; x < t->w; ++x) {
      int y = y0;
      if (kind == 2 && y1 - y0 == 4) { /* run-length mode: four untouched samples with no significant neighbour */
        int quiet = 1;
        for (int k = y0; k < y1 && quiet; ++k)
          quiet = !(MLCC_T1_F(t, x, k) & (MLCC_T1_SIG | MLCC_T1_VISIT)) && !t->nb[(k + 1) * (t->w + 2) + x + 1];
        if (quiet) {
          if (!mlcc_mq_decode(&t->mq, 17)) continue; /* all four stay insignificant */
          int r = mlcc_mq_decode(&t->mq, 18) << 1;
          r |= mlcc_mq_decode(&t->mq, 18);
          mlcc_t1_significant(t, x, y0 + r, p);
          y = y0 + r + 1;
        }
      }
      for (; y < y1; ++y) {
        uint8_t *f = &MLCC_T1_F(t, x, y);
        if (kind == 1) {
          if ((*f & (MLCC_T1_SIG | MLCC_T1_VISIT)) != MLCC_T1_SIG) continue;
          int cx = 16;
          if (!(*f & MLCC_T1_REFINED)) cx = t->nb[(y + 1) * (t->w + 2) + x + 1] ? 15 : 14;
          int32_t *v = &t->v[y * t->w + x];
          *v += mlcc_mq_decode(&t->mq, cx) ? 1 << p : -(1 << p);
          *f |= MLCC_T1_REFINED;
        } else if (!(*f & (MLCC_T1_SIG | MLCC_T1_VISIT))) {
          int cx = mlcc_t1_zc(t, x, y);
          if (kind == 0 && cx == 0) continue; /* significance pass: only next to a significant sample */
          if (kind == 0) *f |= MLCC_T1_VISIT;
          if (mlcc_mq_decode(&t->mq, cx)) mlcc_t1_significant(t, x, y, p);
        }
      }
    }
  }
  if (kind == 2)
    for (int i = 0; i < (t->w + 2) * (t->h + 2); ++i) t->f[i] &= (uint8_t)~MLCC_T1_VISIT;
}

/* Decodes `passes` coding passes of data (the first a cleanup pass at bit plane top) into out (stride ostride),
 * as signed values: halved toward zero for the reversible path, kept doubled for the irreversible one (whose
 * step sizes are halved instead), as OpenJPEG does. */
static int mlcc_t1_decode(mlcc_t1 *t, const uint8_t *data, int64_t len, int passes, int top, int32_t *out,
                          int64_t ostride, int halve) {
  memset(t->f, 0, (size_t)((t->w + 2) * (t->h + 2)));
  memset(t->nb, 0, (size_t)((t->w + 2) * (t->h + 2)));
  memset(t->v, 0, sizeof *t->v * (size_t)(t->w * t->h));
  mlcc_mq_init(&t->mq, data, len);
  for (int k = 0; k < passes && top - (k + 2) / 3 >= 0; ++k) /* cleanup; then per plane below: sig., ref., cleanup */
    mlcc_t1_pass(t, k == 0 ? 2 : (k - 1) % 3, top - (k + 2) / 3);
  for (int y = 0; y < t->h; ++y)
    for (int x = 0; x < t->w; ++x) {
      int32_t v = t->v[y * t->w + x];
      out[y * ostride + x] = (MLCC_T1_F(t, x, y) & MLCC_T1_NEG ? -v : v) / (halve ? 2 : 1);
    }
  return MLCC_OK;
}

/* ---- tier 2: packet headers (Annex B.10) ---- */

typedef struct {
  const uint8_t *s;
  int64_t n, at;
  uint32_t buf;
  int ct, over; /* over: bits past the end were needed */
} mlcc_pbits;

static int mlcc_pbit(mlcc_pbits *b) {
  if (b->ct == 0) { /* after a 0xff byte, the next carries 7 bits */
    b->buf = (b->buf << 8) & 0xffff;
    b->ct = b->buf == 0xff00 ? 7 : 8;
    if (b->at < b->n) b->buf |= b->s[b->at++];
    else b->over = 1;
  }
  return (int)(b->buf >> --b->ct) & 1;
}

static uint32_t mlcc_pbits_read(mlcc_pbits *b, int k) {
  uint32_t v = 0;
  while (k--) v = v << 1 | (uint32_t)mlcc_pbit(b);
  return v;
}

typedef struct {
  int32_t low, value;
  int64_t parent;
} mlcc_tgnode;

typedef struct {
  int64_t n;
  mlcc_tgnode *node; /* the leaves (row-major), then each coarser level up to the root */
} mlcc_tgt;

static int mlcc_tgt_init(mlcc_tgt *t, int64_t w, int64_t h) {
  t->n = 0, t->node = NULL;
  if (w <= 0 || h <= 0) return MLCC_OK;
  int64_t n = 0;
  for (int64_t lw = w, lh = h;; lw = (lw + 1) / 2, lh = (lh + 1) / 2) {
    n += lw * lh;
    if (lw == 1 && lh == 1) break;
  }
  if (!(t->node = malloc(sizeof *t->node * (size_t)n))) return MLCC_ERR_OUT_OF_MEMORY;
  t->n = n;
  int64_t base = 0;
  for (int64_t lw = w, lh = h;; lw = (lw + 1) / 2, lh = (lh + 1) / 2) {
    int64_t up = base + lw * lh, pw = (lw + 1) / 2;
    for (int64_t i = 0; i < lw * lh; ++i) {
      mlcc_tgnode *nd = &t->node[base + i];
      nd->low = 0, nd->value = INT32_MAX;
      nd->parent = lw == 1 && lh == 1 ? -1 : up + (i / lw / 2) * pw + (i % lw) / 2;
    }
    if (lw == 1 && lh == 1) break;
    base = up;
  }
  return MLCC_OK;
}

/* Whether leaf's value is below threshold, reading what the tree still needs (B.10.2). */
static int mlcc_tgt_decode(mlcc_tgt *t, mlcc_pbits *b, int64_t leaf, int32_t threshold) {
  int64_t path[64];
  int depth = 0;
  for (int64_t i = leaf; i >= 0 && depth < 64; i = t->node[i].parent) path[depth++] = i;
  int32_t low = 0;
  for (int k = depth - 1; k >= 0; --k) {
    mlcc_tgnode *nd = &t->node[path[k]];
    if (low > nd->low) nd->low = low;
    else low = nd->low;
    while (low < threshold && low < nd->value && !b->over) {
      if (mlcc_pbit(b)) nd->value = low;
      else ++low;
    }
    nd->low = low;
  }
  return t->node[leaf].value < threshold;
}

/* ---- tile geometry ---- */

typedef struct {
  int64_t x0, y0, x1, y1; /* in its band */
  int included, zbp, lenbits, passes, newpasses;
  int64_t pending; /* bytes in the packet being read */
  uint8_t *data;
  int64_t len, cap;
} mlcc_cblk;

typedef struct { /* one band's share of a precinct */
  int64_t cw, ch;
  mlcc_tgt incl, imsb;
  mlcc_cblk *cb;
} mlcc_pband;

typedef struct {
  int orient, mb; /* mb: magnitude bit planes */
  float step;     /* irreversible: half the quantisation step (OpenJPEG's float) */
  int64_t x0, y0, x1, y1;
  int32_t *coef;
} mlcc_band;

typedef struct {
  int64_t x0, y0, x1, y1, npx, npy;
  int nbands, ppx, ppy;
  mlcc_band band[3];
  mlcc_pband *prec; /* npx * npy precincts of nbands */
} mlcc_res;

typedef struct {
  int nl, cbw, cbh, cbstyle, transform, pp[33]; /* pp: PPx | PPy << 4 by resolution */
  int guard, qstyle, expn[3 * 32 + 1], mant[3 * 32 + 1]; /* by band: exponent and mantissa of the step */
} mlcc_j2k_style;

typedef struct {
  int64_t x0, y0, x1, y1, tw, th, tx0, ty0, ntx, nty;
  int nc, layers, prog, mct, sop, eph;
  mlcc_j2k_style style[4];
} mlcc_j2k;

static int64_t mlcc_j2k_cdiv(int64_t a, int k) { return -((-a) >> k); } /* ceil(a / 2^k), any sign */

static void mlcc_j2k_free_res(mlcc_res *res, int nres) {
  for (int r = 0; r < nres; ++r) {
    for (int k = 0; k < res[r].nbands; ++k) free(res[r].band[k].coef);
    if (!res[r].prec) continue;
    for (int64_t p = 0; p < res[r].npx * res[r].npy * res[r].nbands; ++p) {
      mlcc_pband *pb = &res[r].prec[p];
      for (int64_t i = 0; pb->cb && i < pb->cw * pb->ch; ++i) free(pb->cb[i].data);
      free(pb->cb), free(pb->incl.node), free(pb->imsb.node);
    }
    free(res[r].prec);
  }
}

/* Resolutions, bands, precincts and code-blocks of one tile-component (B.5 to B.7). */
static int mlcc_j2k_layout(const mlcc_j2k_style *st, int64_t tx0, int64_t ty0, int64_t tx1, int64_t ty1,
                           mlcc_res *res) {
  memset(res, 0, sizeof *res * (size_t)(st->nl + 1));
  for (int r = 0; r <= st->nl; ++r) {
    mlcc_res *R = &res[r];
    int scale = st->nl - r;
    R->x0 = mlcc_j2k_cdiv(tx0, scale), R->y0 = mlcc_j2k_cdiv(ty0, scale);
    R->x1 = mlcc_j2k_cdiv(tx1, scale), R->y1 = mlcc_j2k_cdiv(ty1, scale);
    R->ppx = st->pp[r] & 15, R->ppy = st->pp[r] >> 4;
    R->nbands = r == 0 ? 1 : 3;
    for (int k = 0; k < R->nbands; ++k) {
      mlcc_band *B = &R->band[k];
      B->orient = r == 0 ? 0 : k + 1;
      int nb = r == 0 ? st->nl : st->nl - r + 1, xo = B->orient & 1, yo = B->orient >> 1;
      int64_t sx = nb ? (int64_t)xo << (nb - 1) : 0, sy = nb ? (int64_t)yo << (nb - 1) : 0;
      B->x0 = mlcc_j2k_cdiv(tx0 - sx, nb), B->y0 = mlcc_j2k_cdiv(ty0 - sy, nb);
      B->x1 = mlcc_j2k_cdiv(tx1 - sx, nb), B->y1 = mlcc_j2k_cdiv(ty1 - sy, nb);
      int e = r == 0 ? 0 : 3 * (r - 1) + k + 1;
      B->mb = st->guard + st->expn[e] - 1;
      int shift = 8 - st->expn[e]; /* 2^(precision - exponent), exactly, in double as OpenJPEG's pow */
      double scale = shift >= 0 ? (double)(1ull << shift) : 1.0 / (double)(1ull << -shift);
      B->step = 0.5f * (float)((1.0 + st->mant[e] / 2048.0) * scale);
      if (B->mb > 30) return MLCC_ERR_UNSUPPORTED_DATA; /* beyond 32-bit magnitudes, as OpenJPEG */
      int64_t area = (B->x1 - B->x0) * (B->y1 - B->y0);
      if (!(B->coef = calloc((size_t)(area > 0 ? area : 1), sizeof *B->coef))) return MLCC_ERR_OUT_OF_MEMORY;
    }
    if (R->x1 <= R->x0 || R->y1 <= R->y0) continue; /* no precincts */
    R->npx = mlcc_j2k_cdiv(R->x1, R->ppx) - (R->x0 >> R->ppx);
    R->npy = mlcc_j2k_cdiv(R->y1, R->ppy) - (R->y0 >> R->ppy);
    if (!(R->prec = calloc((size_t)(R->npx * R->npy * R->nbands), sizeof *R->prec))) return MLCC_ERR_OUT_OF_MEMORY;
    int sub = r > 0, pw = R->ppx - sub, ph = R->ppy - sub;
    int cbw = st->cbw < pw ? st->cbw : pw, cbh = st->cbh < ph ? st->cbh : ph;
    int64_t ax = ((R->x0 >> R->ppx) << R->ppx) >> sub, ay = ((R->y0 >> R->ppy) << R->ppy) >> sub;
    for (int64_t p = 0; p < R->npx * R->npy; ++p)
      for (int k = 0; k < R->nbands; ++k) {
        mlcc_band *B = &R->band[k];
        mlcc_pband *P = &R->prec[p * R->nbands + k];
        int64_t px0 = ax + (p % R->npx << pw), py0 = ay + (p / R->npx << ph);
        int64_t x0 = px0 > B->x0 ? px0 : B->x0, y0 = py0 > B->y0 ? py0 : B->y0;
        int64_t x1 = px0 + ((int64_t)1 << pw), y1 = py0 + ((int64_t)1 << ph);
        x1 = x1 < B->x1 ? x1 : B->x1, y1 = y1 < B->y1 ? y1 : B->y1;
        if (x1 <= x0 || y1 <= y0) continue;
        int64_t cx0 = x0 >> cbw, cy0 = y0 >> cbh;
        P->cw = mlcc_j2k_cdiv(x1, cbw) - cx0, P->ch = mlcc_j2k_cdiv(y1, cbh) - cy0;
        if (!(P->cb = calloc((size_t)(P->cw * P->ch), sizeof *P->cb))) return MLCC_ERR_OUT_OF_MEMORY;
        int s1 = mlcc_tgt_init(&P->incl, P->cw, P->ch), s2 = mlcc_tgt_init(&P->imsb, P->cw, P->ch);
        if (s1 != MLCC_OK || s2 != MLCC_OK) return MLCC_ERR_OUT_OF_MEMORY;
        for (int64_t i = 0; i < P->cw * P->ch; ++i) {
          mlcc_cblk *c = &P->cb[i];
          int64_t bx = (cx0 + i % P->cw) << cbw, by = (cy0 + i / P->cw) << cbh;
          c->x0 = bx > x0 ? bx : x0, c->y0 = by > y0 ? by : y0;
          c->x1 = bx + ((int64_t)1 << cbw) < x1 ? bx + ((int64_t)1 << cbw) : x1;
          c->y1 = by + ((int64_t)1 << cbh) < y1 ? by + ((int64_t)1 << cbh) : y1;
        }
      }
  }
  return MLCC_OK;
}

/* One packet (a layer of one precinct of one resolution): its header, then its code-blocks' bytes. */
static int mlcc_j2k_packet(const mlcc_j2k *j, mlcc_res *R, int64_t p, int layer, const uint8_t *s, int64_t n,
                           int64_t *at) {
  if (j->sop && *at + 6 <= n && s[*at] == 0xff && s[*at + 1] == 0x91) *at += 6;
  mlcc_pbits b = {s, n, *at, 0, 0, 0};
  int present = mlcc_pbit(&b);
  for (int k = 0; k < R->nbands; ++k) {
    mlcc_pband *P = &R->prec[p * R->nbands + k];
    for (int64_t i = 0; i < P->cw * P->ch; ++i) {
      mlcc_cblk *c = &P->cb[i];
      c->newpasses = 0, c->pending = 0;
      if (!present) continue;
      int in = c->included ? mlcc_pbit(&b) : mlcc_tgt_decode(&P->incl, &b, i, layer + 1);
      if (!in || b.over) continue;
      if (!c->included) { /* zero bit planes: the tag tree's value */
        int z = 0;
        while (!mlcc_tgt_decode(&P->imsb, &b, i, z) && !b.over && z < 64) ++z;
        c->zbp = z - 1, c->lenbits = 3, c->included = 1;
      }
      int np = 1;
      if (mlcc_pbit(&b)) {
        np = 2;
        if (mlcc_pbit(&b)) {
          uint32_t v = mlcc_pbits_read(&b, 2);
          np = 3 + (int)v;
          if (v == 3) {
            v = mlcc_pbits_read(&b, 5);
            np = 6 + (int)v;
            if (v == 31) np = 37 + (int)mlcc_pbits_read(&b, 7);
          }
        }
      }
      while (mlcc_pbit(&b) && !b.over && c->lenbits < 32) ++c->lenbits;
      int bits = c->lenbits;
      for (int q = np; q > 1; q >>= 1) ++bits; /* + floor(log2(passes)) */
      if (bits > 32 || b.over) return MLCC_ERR_BAD_DATA;
      c->pending = mlcc_pbits_read(&b, bits), c->newpasses = np;
    }
  }
  if (b.over) return MLCC_ERR_BAD_DATA;
  if ((b.buf & 0xff) == 0xff && b.ct < 8) { /* a header ending in 0xff is followed by a stuffed byte */
    if (b.at >= n) return MLCC_ERR_BAD_DATA;
    ++b.at;
  }
  *at = b.at;
  if (j->eph && *at + 2 <= n && s[*at] == 0xff && s[*at + 1] == 0x92) *at += 2;
  for (int k = 0; k < R->nbands; ++k) {
    mlcc_pband *P = &R->prec[p * R->nbands + k];
    for (int64_t i = 0; i < P->cw * P->ch; ++i) {
      mlcc_cblk *c = &P->cb[i];
      if (!c->newpasses) continue;
      if (c->pending > n - *at || c->passes + c->newpasses > 164) return MLCC_ERR_BAD_DATA;
      if (c->len + c->pending > c->cap) {
        int64_t cap = 2 * (c->len + c->pending) + 16;
        uint8_t *grown = realloc(c->data, (size_t)cap);
        if (!grown) return MLCC_ERR_OUT_OF_MEMORY;
        c->data = grown, c->cap = cap;
      }
      if (c->pending) memcpy(c->data + c->len, s + *at, (size_t)c->pending);
      c->len += c->pending, *at += c->pending, c->passes += c->newpasses;
    }
  }
  return MLCC_OK;
}

/* The inverse 5/3 lifting (F.3.8) of len samples whose first has parity odd; mirrored at both ends. */
static void mlcc_j2k_53(int32_t *x, int64_t len, int odd) {
  if (len == 1) {
    if (odd) x[0] /= 2;
    return;
  }
#define MLCC_J2K_AT(k) x[(k) < 0 ? 1 : (k) >= len ? len - 2 : (k)]
  for (int64_t k = odd; k < len; k += 2) x[k] -= (MLCC_J2K_AT(k - 1) + MLCC_J2K_AT(k + 1) + 2) >> 2;
  for (int64_t k = !odd; k < len; k += 2) x[k] += (MLCC_J2K_AT(k - 1) + MLCC_J2K_AT(k + 1)) >> 1;
#undef MLCC_J2K_AT
}

/* Rebuilds resolution r from r - 1 (in `low`, (x1 - x0) x (y1 - y0) of res[r - 1]) and r's bands; into out. */
static void mlcc_j2k_idwt(const mlcc_res *res, int r, const int32_t *low, int32_t *out, int32_t *line) {
  const mlcc_res *R = &res[r], *L = &res[r - 1];
  const mlcc_band *hl = &R->band[0], *lh = &R->band[1], *hh = &R->band[2];
  int64_t w = R->x1 - R->x0, h = R->y1 - R->y0, lw = L->x1 - L->x0, hw = hl->x1 - hl->x0;
  int64_t lh_rows = L->y1 - L->y0;
  for (int64_t y = 0; y < h; ++y) { /* rows: the low rows from LL and HL, the high rows from LH and HH */
    int high = y >= lh_rows;
    int64_t row = high ? y - lh_rows : y;
    const int32_t *lo = high ? lh->coef + row * (lh->x1 - lh->x0) : low + row * lw;
    const int32_t *hi = high ? hh->coef + row * (hh->x1 - hh->x0) : hl->coef + row * hw;
    for (int64_t k = 0; k < w; ++k) {
      int64_t x = R->x0 + k;
      line[k] = x & 1 ? hi[(x - 1) / 2 - hl->x0] : lo[x / 2 - L->x0];
    }
    mlcc_j2k_53(line, w, (int)(R->x0 & 1));
    memcpy(out + y * w, line, sizeof *line * (size_t)w);
  }
  for (int64_t x = 0; x < w; ++x) { /* columns: even rows from the low half, odd from the high */
    for (int64_t k = 0; k < h; ++k) {
      int64_t y = R->y0 + k;
      line[k] = y & 1 ? out[(lh_rows + (y - 1) / 2 - lh->y0) * w + x] : out[(y / 2 - L->y0) * w + x];
    }
    mlcc_j2k_53(line, h, (int)(R->y0 & 1));
    for (int64_t k = 0; k < h; ++k) out[k * w + x] = line[k];
  }
}

/* The irreversible path is computed in single precision with OpenJPEG's operations in its order: products are
 * rounded before they are added (no fused multiply-add, whatever the build's -ffp-contract). */
#if defined(__GNUC__) && !defined(__clang__)
#define MLCC_J2K_EXACT __attribute__((optimize("fp-contract=off"), noinline))
#else
#define MLCC_J2K_EXACT
#endif
#if defined(__clang__)
#define MLCC_J2K_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define MLCC_J2K_NO_CONTRACT
#endif

/* The inverse 9/7 lifting (F.3.8.2) as OpenJPEG computes it: low-pass samples times K, high-pass ones times
 * 1.625732422 (its 2/K, the band gains being left out of the step sizes), then the four lifting steps. */
MLCC_J2K_EXACT static void mlcc_j2k_97(float *x, int64_t len, int odd) {
  MLCC_J2K_NO_CONTRACT
  static const float lift[4] = {-0.443506852f, -0.882911075f, 0.052980118f, 1.586134342f}; /* -delta .. -alpha */
  if (len == 1) return;
  for (int64_t k = odd; k < len; k += 2) x[k] *= 1.230174105f;
  for (int64_t k = !odd; k < len; k += 2) x[k] *= 1.625732422f;
  for (int s = 0; s < 4; ++s)
    for (int64_t k = s % 2 ? !odd : odd; k < len; k += 2) {
      float left = x[k == 0 ? 1 : k - 1], right = x[k + 1 >= len ? len - 2 : k + 1], sum = left + right;
      x[k] = x[k] + sum * lift[s];
    }
}

/* As mlcc_j2k_idwt, for the irreversible path: bands dequantised (times their half steps) as they are read. */
static void mlcc_j2k_idwt97(const mlcc_res *res, int r, const float *low, float *out, float *line) {
  const mlcc_res *R = &res[r], *L = &res[r - 1];
  const mlcc_band *hl = &R->band[0], *lh = &R->band[1], *hh = &R->band[2];
  int64_t w = R->x1 - R->x0, h = R->y1 - R->y0, lw = L->x1 - L->x0, hw = hl->x1 - hl->x0;
  int64_t lh_rows = L->y1 - L->y0;
  for (int64_t y = 0; y < h; ++y) {
    int high = y >= lh_rows;
    int64_t row = high ? y - lh_rows : y;
    const mlcc_band *hb = high ? hh : hl;
    const int32_t *hi = hb->coef + row * hw, *lo = high ? lh->coef + row * (lh->x1 - lh->x0) : NULL;
    const float *lof = low + row * lw;
    for (int64_t k = 0; k < w; ++k) {
      int64_t x = R->x0 + k;
      if (x & 1) line[k] = (float)hi[(x - 1) / 2 - hl->x0] * hb->step;
      else line[k] = lo ? (float)lo[x / 2 - L->x0] * lh->step : lof[x / 2 - L->x0];
    }
    mlcc_j2k_97(line, w, (int)(R->x0 & 1));
    memcpy(out + y * w, line, sizeof *line * (size_t)w);
  }
  for (int64_t x = 0; x < w; ++x) {
    for (int64_t k = 0; k < h; ++k) {
      int64_t y = R->y0 + k;
      line[k] = y & 1 ? out[(lh_rows + (y - 1) / 2 - lh->y0) * w + x] : out[(y / 2 - L->y0) * w + x];
    }
    mlcc_j2k_97(line, h, (int)(R->y0 & 1));
    for (int64_t k = 0; k < h; ++k) out[k * w + x] = line[k];
  }
}

/* The irreversible colour transform (ICT) as OpenJPEG's opj_mct_decode_real. */
MLCC_J2K_EXACT static void mlcc_j2k_ict(float *c0, float *c1, float *c2, int64_t n) {
  MLCC_J2K_NO_CONTRACT
  for (int64_t i = 0; i < n; ++i) {
    float y = c0[i], u = c1[i], v = c2[i], vr = v * 1.402f, ug = u * 0.34413f, vg = v * 0.71414f, ub = u * 1.772f;
    c0[i] = y + vr, c1[i] = y - ug - vg, c2[i] = y + ub;
  }
}

/* Rounds to the nearest integer, ties to even (lrintf in the default rounding mode), then shifts by 128 and
 * clamps to a byte, as OpenJPEG's level shift for the irreversible path. */
static uint8_t mlcc_j2k_round_shift(float v) {
  if (!(v > -1e9f && v < 1e9f)) return v > 0 ? 255 : 0; /* also NaN, as a clamp would */
  int64_t t = (int64_t)v;
  float frac = v - (float)t; /* exact for |v| < 2^23; 0 above */
  if (frac > 0.5f || (frac == 0.5f && (t & 1))) ++t;
  else if (frac < -0.5f || (frac == -0.5f && (t & 1))) --t;
  t += 128;
  return (uint8_t)(t < 0 ? 0 : t > 255 ? 255 : t);
}

/* The position-driven progressions (B.12.1.3 to B.12.1.5): RPCL, PCRL, CPRL. Positions step over the tile by
 * the smallest precinct on the reference grid; a precinct's packets (all layers) come when the position is its
 * top-left corner (or the tile's edge cuts it), each once. */
static int mlcc_j2k_positions(const mlcc_j2k *j, mlcc_res (*res)[33], int64_t tx0, int64_t ty0, int64_t tx1,
                              int64_t ty1, const uint8_t *s, int64_t n, int64_t *at) {
  int maxnl = 0, st = MLCC_OK;
  int64_t offset[4][33], count = 0;
  for (int c = 0; c < j->nc; ++c) {
    maxnl = j->style[c].nl > maxnl ? j->style[c].nl : maxnl;
    for (int r = 0; r <= j->style[c].nl; ++r) offset[c][r] = count, count += res[c][r].npx * res[c][r].npy;
  }
  uint8_t *done = calloc((size_t)(count ? count : 1), 1);
  if (!done) return MLCC_ERR_OUT_OF_MEMORY;
  int outer = j->prog == 2 ? maxnl + 1 : j->prog == 4 ? j->nc : 1; /* resolutions, components, or none */
  int inners = j->prog == 2 ? j->nc : j->prog == 3 ? j->nc * (maxnl + 1) : maxnl + 1; /* inside a position */
  for (int o = 0; o < outer && st == MLCC_OK; ++o) {
    int64_t dx = INT64_MAX, dy = INT64_MAX; /* the step: the smallest precinct, over what this loop visits */
    for (int c = 0; c < j->nc; ++c)
      for (int r = 0; r <= j->style[c].nl; ++r) {
        if ((j->prog == 2 && r != o) || (j->prog == 4 && c != o)) continue;
        int level = j->style[c].nl - r;
        int64_t sx = (int64_t)1 << (res[c][r].ppx + level), sy = (int64_t)1 << (res[c][r].ppy + level);
        dx = sx < dx ? sx : dx, dy = sy < dy ? sy : dy;
      }
    if (dx == INT64_MAX) continue;
    for (int64_t y = ty0; y < ty1 && st == MLCC_OK; y += dy - y % dy)
      for (int64_t x = tx0; x < tx1 && st == MLCC_OK; x += dx - x % dx)
        for (int inner = 0; inner < inners && st == MLCC_OK; ++inner) {
          int c = j->prog == 2 ? inner : j->prog == 3 ? inner / (maxnl + 1) : o;
          int r = j->prog == 2 ? o : inner % (maxnl + 1);
          if (r > j->style[c].nl) continue;
          mlcc_res *R = &res[c][r];
          int level = j->style[c].nl - r, rpx = R->ppx + level, rpy = R->ppy + level;
          if (!(y % ((int64_t)1 << rpy) == 0 || (y == ty0 && (R->y0 << level) % ((int64_t)1 << rpy)))) continue;
          if (!(x % ((int64_t)1 << rpx) == 0 || (x == tx0 && (R->x0 << level) % ((int64_t)1 << rpx)))) continue;
          if (R->npx == 0 || R->npy == 0) continue;
          int64_t k = ((mlcc_j2k_cdiv(x, level) >> R->ppx) - (R->x0 >> R->ppx)) +
                      ((mlcc_j2k_cdiv(y, level) >> R->ppy) - (R->y0 >> R->ppy)) * R->npx;
          if (k < 0 || k >= R->npx * R->npy || done[offset[c][r] + k]) continue;
          done[offset[c][r] + k] = 1;
          for (int l = 0; l < j->layers && st == MLCC_OK && *at < n; ++l)
            st = mlcc_j2k_packet(j, R, k, l, s, n, at);
        }
  }
  free(done);
  return st;
}

/* Decodes tile t from its packets in s[0 .. n) into the 8-bit planes (the image's size, one per component). */
static int mlcc_j2k_tile(const mlcc_j2k *j, int64_t t, const uint8_t *s, int64_t n, uint8_t **planes) {
  int64_t p = t % j->ntx, q = t / j->ntx, W = j->x1 - j->x0;
  int64_t tx0 = j->tx0 + p * j->tw, ty0 = j->ty0 + q * j->th, tx1 = tx0 + j->tw, ty1 = ty0 + j->th;
  tx0 = tx0 > j->x0 ? tx0 : j->x0, ty0 = ty0 > j->y0 ? ty0 : j->y0;
  tx1 = tx1 < j->x1 ? tx1 : j->x1, ty1 = ty1 < j->y1 ? ty1 : j->y1;
  mlcc_res res[4][33];
  int32_t *img[4] = {NULL, NULL, NULL, NULL};
  float *imgf[4] = {NULL, NULL, NULL, NULL}; /* the irreversible path's components */
  int st = MLCC_OK, built = 0, maxnl = 0;
  for (int c = 0; c < j->nc && st == MLCC_OK; ++c, ++built) {
    st = mlcc_j2k_layout(&j->style[c], tx0, ty0, tx1, ty1, res[c]);
    maxnl = j->style[c].nl > maxnl ? j->style[c].nl : maxnl;
  }
  /* packets in the progression's order */
  int64_t at = 0;
  int nl1 = maxnl + 1, L = j->layers;
  if (j->prog <= 1) { /* layer-resolution-component-position, resolution-layer-component-position */
    int64_t total = (int64_t)L * nl1 * j->nc;
    for (int64_t i = 0; i < total && st == MLCC_OK && at < n; ++i) {
      int l, r, c = (int)(i % j->nc);
      if (j->prog == 0) l = (int)(i / (nl1 * j->nc)), r = (int)(i / j->nc % nl1);
      else r = (int)(i / (L * j->nc)), l = (int)(i / j->nc % L);
      if (r > j->style[c].nl) continue;
      mlcc_res *R = &res[c][r];
      for (int64_t k = 0; k < R->npx * R->npy && st == MLCC_OK && at < n; ++k)
        st = mlcc_j2k_packet(j, R, k, l, s, n, &at);
    }
  } else if (st == MLCC_OK) {
    st = mlcc_j2k_positions(j, res, tx0, ty0, tx1, ty1, s, n, &at);
  }
  /* tier 1, then the inverse wavelet transform */
  mlcc_t1 t1;
  t1.f = malloc(1026 * 6), t1.nb = malloc(1026 * 6), t1.v = malloc(sizeof *t1.v * 4096); /* the largest block */
  int64_t tw = tx1 - tx0, th = ty1 - ty0;
  int32_t *line = malloc(sizeof *line * (size_t)(tw > th ? tw : th));
  float *linef = malloc(sizeof *linef * (size_t)(tw > th ? tw : th));
  if (st == MLCC_OK && (!t1.f || !t1.nb || !t1.v || !line || !linef)) st = MLCC_ERR_OUT_OF_MEMORY;
  for (int c = 0; c < j->nc && st == MLCC_OK; ++c) {
    const mlcc_j2k_style *sty = &j->style[c];
    for (int r = 0; r <= sty->nl; ++r) {
      mlcc_res *R = &res[c][r];
      for (int64_t k = 0; k < R->npx * R->npy * R->nbands; ++k) {
        mlcc_pband *P = &R->prec[k];
        mlcc_band *B = &R->band[k % R->nbands];
        for (int64_t i = 0; i < P->cw * P->ch; ++i) {
          mlcc_cblk *cb = &P->cb[i];
          if (!cb->passes) continue;
          t1.w = (int)(cb->x1 - cb->x0), t1.h = (int)(cb->y1 - cb->y0), t1.orient = B->orient;
          mlcc_t1_decode(&t1, cb->data, cb->len, cb->passes, B->mb - 1 - cb->zbp,
                         B->coef + (cb->y0 - B->y0) * (B->x1 - B->x0) + (cb->x0 - B->x0), B->x1 - B->x0,
                         sty->transform == 1);
        }
      }
    }
    if (sty->transform == 0) { /* irreversible: in floats */
      mlcc_band *ll = &res[c][0].band[0];
      int64_t area = (ll->x1 - ll->x0) * (ll->y1 - ll->y0);
      float *cur = malloc(sizeof *cur * (size_t)(area > 0 ? area : 1)), *next = NULL;
      if (!cur) st = MLCC_ERR_OUT_OF_MEMORY;
      for (int64_t i = 0; i < area && cur; ++i) cur[i] = (float)ll->coef[i] * ll->step;
      for (int r = 1; r <= sty->nl && st == MLCC_OK; ++r) {
        mlcc_res *R = &res[c][r];
        int64_t ra = (R->x1 - R->x0) * (R->y1 - R->y0);
        if (!(next = malloc(sizeof *next * (size_t)(ra > 0 ? ra : 1)))) st = MLCC_ERR_OUT_OF_MEMORY; /* never NULL */
        if (st == MLCC_OK && ra > 0) mlcc_j2k_idwt97(res[c], r, cur, next, linef);
        free(cur), cur = next, next = NULL;
      }
      imgf[c] = cur;
      continue;
    }
    /* resolution 0 is its LL band; each further one doubles it */
    int32_t *cur = res[c][0].band[0].coef, *next = NULL;
    res[c][0].band[0].coef = NULL;
    for (int r = 1; r <= sty->nl && st == MLCC_OK; ++r) {
      mlcc_res *R = &res[c][r];
      int64_t area = (R->x1 - R->x0) * (R->y1 - R->y0);
      if (!(next = malloc(sizeof *next * (size_t)(area > 0 ? area : 1)))) st = MLCC_ERR_OUT_OF_MEMORY;
      if (st == MLCC_OK && area > 0) mlcc_j2k_idwt(res[c], r, cur, next, line);
      free(cur), cur = next, next = NULL;
    }
    img[c] = cur;
  }
  if (st == MLCC_OK && j->mct && j->nc >= 3 && j->style[0].transform == 0) {
    if (!imgf[1] || !imgf[2]) st = MLCC_ERR_UNSUPPORTED_DATA; /* a colour transform over mixed paths */
    else mlcc_j2k_ict(imgf[0], imgf[1], imgf[2], tw * th);
  }
  if (st == MLCC_OK && tw > 0 && th > 0) { /* colour transform, level shift, into the planes */
    int rct = j->mct && j->nc >= 3 && j->style[0].transform == 1;
    if (rct && (!img[1] || !img[2])) st = MLCC_ERR_UNSUPPORTED_DATA;
    for (int64_t y = 0; y < th; ++y)
      for (int64_t x = 0; x < tw; ++x) {
        int64_t i = y * tw + x, o = (ty0 - j->y0 + y) * W + (tx0 - j->x0 + x);
        int32_t v[4] = {0, 0, 0, 0};
        for (int c = 0; c < j->nc; ++c) v[c] = img[c] ? img[c][i] : 0;
        if (st != MLCC_OK) break;
        if (rct) {
          int32_t g = v[0] - ((v[1] + v[2]) >> 2);
          v[0] = v[2] + g, v[2] = v[1] + g, v[1] = g;
        }
        for (int c = 0; c < j->nc; ++c) { /* + 128, the DC level shift */
          int32_t u = v[c] + 128;
          planes[c][o] = imgf[c] ? mlcc_j2k_round_shift(imgf[c][i]) : (uint8_t)(u < 0 ? 0 : u > 255 ? 255 : u);
        }
      }
  }
  for (int c = 0; c < built; ++c) mlcc_j2k_free_res(res[c], j->style[c].nl + 1), free(img[c]), free(imgf[c]);
  free(t1.f), free(t1.nb), free(t1.v), free(line), free(linef);
  return st;
}

/* COD / COC style bytes from s (after the component index): Scod-like flags in *flags where asked. */
static int mlcc_j2k_cod(mlcc_j2k_style *st, const uint8_t *s, int64_t n, int precincts) {
  if (n < 5) return MLCC_ERR_BAD_DATA;
  st->nl = s[0], st->cbw = s[1] + 2, st->cbh = s[2] + 2, st->cbstyle = s[3], st->transform = s[4];
  if (st->nl > 32 || st->cbw > 10 || st->cbh > 10 || st->cbw + st->cbh > 12) return MLCC_ERR_BAD_DATA;
  for (int r = 0; r <= st->nl; ++r) {
    if (!precincts) {
      st->pp[r] = 15 | 15 << 4;
    } else {
      if (n < 6 + r) return MLCC_ERR_BAD_DATA;
      st->pp[r] = s[5 + r];
      if (r > 0 && ((st->pp[r] & 15) == 0 || (st->pp[r] >> 4) == 0)) return MLCC_ERR_BAD_DATA;
    }
  }
  return MLCC_OK;
}

/* QCD / QCC: guard bits, and per band the step's exponent and mantissa (none: exponents only; derived: from
 * the LL band's, one exponent less per level, as OpenJPEG; expounded: each band's). */
static int mlcc_j2k_qcd(mlcc_j2k_style *st, const uint8_t *s, int64_t n) {
  if (n < 1) return MLCC_ERR_BAD_DATA;
  st->guard = s[0] >> 5, st->qstyle = s[0] & 31;
  int bytes = st->qstyle == 0 ? 1 : 2;
  int64_t given = st->qstyle == 1 ? 1 : (n - 1) / bytes;
  if (st->qstyle > 2 || given > 3 * 32 + 1 || n < 1 + bytes * given) return MLCC_ERR_BAD_DATA;
  for (int64_t i = 0; i < 3 * 32 + 1; ++i) {
    if (i < given) {
      uint32_t v = bytes == 1 ? s[1 + i] : mlcc_be16(s + 1 + 2 * i);
      st->expn[i] = bytes == 1 ? (int)(v >> 3) : (int)(v >> 11), st->mant[i] = bytes == 1 ? 0 : (int)(v & 0x7ff);
    } else if (st->qstyle == 1) {
      int e = st->expn[0] - (int)((i - 1) / 3);
      st->expn[i] = e > 0 ? e : 0, st->mant[i] = st->mant[0];
    } else {
      st->expn[i] = -1, st->mant[i] = 0; /* missing: checked against the levels below */
    }
  }
  return MLCC_OK;
}

/* A codestream (from its SOC marker) decoded into img. */
static int mlcc_j2k_stream(mlcc_img *img, const uint8_t *s, int64_t n) {
  mlcc_j2k j;
  memset(&j, 0, sizeof j);
  mlcc_j2k_style cod, coc[4], qcc[4];
  int have_siz = 0, have_cod = 0, have_qcd = 0, has_coc[4] = {0}, has_qcc[4] = {0}, st = MLCC_OK;
  memset(&cod, 0, sizeof cod);
  int64_t at = 2;
  while (st == MLCC_OK) { /* the main header, up to the first tile-part */
    if (at + 4 > n) return MLCC_ERR_BAD_DATA;
    uint32_t marker = mlcc_be16(s + at), len = mlcc_be16(s + at + 2);
    if (marker == 0xff90) break;
    if (len < 2 || at + 2 + len > n) return MLCC_ERR_BAD_DATA;
    const uint8_t *m = s + at + 4;
    int64_t ml = len - 2;
    int cbytes = j.nc > 256 ? 2 : 1;
    if (marker == 0xff51) { /* SIZ */
      if (ml < 38) return MLCC_ERR_BAD_DATA;
      j.x1 = mlcc_be32(m + 2), j.y1 = mlcc_be32(m + 6), j.x0 = mlcc_be32(m + 10), j.y0 = mlcc_be32(m + 14);
      j.tw = mlcc_be32(m + 18), j.th = mlcc_be32(m + 22), j.tx0 = mlcc_be32(m + 26), j.ty0 = mlcc_be32(m + 30);
      j.nc = (int)mlcc_be16(m + 34);
      if (j.nc < 1 || ml < 36 + 3 * j.nc) return MLCC_ERR_BAD_DATA;
      if (j.nc > 4) return MLCC_ERR_UNSUPPORTED_DATA;
      for (int c = 0; c < j.nc; ++c)
        if (m[36 + 3 * c] != 7 || m[37 + 3 * c] != 1 || m[38 + 3 * c] != 1)
          return MLCC_ERR_UNSUPPORTED_DATA; /* only 8 unsigned bits at full resolution */
      if (j.x1 <= j.x0 || j.y1 <= j.y0 || j.tw < 1 || j.th < 1 || j.tx0 > j.x0 || j.ty0 > j.y0 ||
          j.tx0 + j.tw <= j.x0 || j.ty0 + j.th <= j.y0)
        return MLCC_ERR_BAD_DATA;
      j.ntx = (j.x1 - j.tx0 + j.tw - 1) / j.tw, j.nty = (j.y1 - j.ty0 + j.th - 1) / j.th;
      if (j.ntx * j.nty > 65535) return MLCC_ERR_BAD_DATA;
      have_siz = 1;
    } else if (marker == 0xff52) { /* COD */
      if (ml < 10) return MLCC_ERR_BAD_DATA;
      j.sop = m[0] >> 1 & 1, j.eph = m[0] >> 2 & 1, j.prog = m[1], j.layers = (int)mlcc_be16(m + 2), j.mct = m[4];
      if (j.prog > 4 || j.layers < 1) return MLCC_ERR_BAD_DATA;
      st = mlcc_j2k_cod(&cod, m + 5, ml - 5, m[0] & 1);
      have_cod = 1;
    } else if (marker == 0xff53 || marker == 0xff5d) { /* COC, QCC */
      if (!have_siz || ml < cbytes + 1) return MLCC_ERR_BAD_DATA;
      int c = cbytes == 2 ? (int)mlcc_be16(m) : m[0];
      if (c >= j.nc) return MLCC_ERR_BAD_DATA;
      if (marker == 0xff53) st = mlcc_j2k_cod(&coc[c], m + cbytes + 1, ml - cbytes - 1, m[cbytes] & 1), has_coc[c] = 1;
      else st = mlcc_j2k_qcd(&qcc[c], m + cbytes, ml - cbytes), has_qcc[c] = 1;
    } else if (marker == 0xff5c) { /* QCD */
      st = mlcc_j2k_qcd(&cod, m, ml);
      have_qcd = 1;
    } else if (marker == 0xff5e || marker == 0xff5f || marker == 0xff60) {
      return MLCC_ERR_UNSUPPORTED_DATA; /* RGN, POC, PPM */
    } else if ((marker >> 8) != 0xff) {
      return MLCC_ERR_BAD_DATA;
    }
    at += 2 + len; /* TLM, PLM, CRG, COM and others: skipped */
  }
  if (st != MLCC_OK) return st;
  if (!have_siz || !have_cod || !have_qcd) return MLCC_ERR_BAD_DATA;
  for (int c = 0; c < j.nc; ++c) {
    mlcc_j2k_style *sty = &j.style[c];
    *sty = has_coc[c] ? coc[c] : cod;
    const mlcc_j2k_style *q = has_qcc[c] ? &qcc[c] : &cod;
    sty->guard = q->guard, sty->qstyle = q->qstyle;
    memcpy(sty->expn, q->expn, sizeof sty->expn), memcpy(sty->mant, q->mant, sizeof sty->mant);
    if (sty->transform > 1) return MLCC_ERR_BAD_DATA;
    if (sty->cbstyle != 0) return MLCC_ERR_UNSUPPORTED_DATA; /* code-block coding options */
    for (int e = 0; e <= 3 * sty->nl; ++e)
      if (sty->expn[e] < 0) return MLCC_ERR_BAD_DATA;
  }
  if ((st = mlcc_img_begin(img, j.x1 - j.x0, j.y1 - j.y0)) != MLCC_OK) return st;
  /* tile-parts: each tile's data gathered in order */
  int64_t ntiles = j.ntx * j.nty, W = j.x1 - j.x0, H = j.y1 - j.y0;
  uint8_t **data = calloc((size_t)ntiles, sizeof *data), *planes[4] = {NULL, NULL, NULL, NULL}, *rgb = NULL;
  int64_t *size = calloc((size_t)ntiles, sizeof *size);
  if (!data || !size) st = MLCC_ERR_OUT_OF_MEMORY;
  while (st == MLCC_OK && at + 12 <= n && mlcc_be16(s + at) == 0xff90) {
    int64_t start = at, tile = mlcc_be16(s + at + 4), psot = mlcc_be32(s + at + 6);
    if (mlcc_be16(s + at + 2) != 10 || tile >= ntiles) {
      st = MLCC_ERR_BAD_DATA;
      break;
    }
    int64_t end = psot ? start + psot : n;
    if (!psot && n >= 2 && s[n - 2] == 0xff && s[n - 1] == 0xd9) end = n - 2;
    if (end > n || end < start + 14) {
      st = MLCC_ERR_BAD_DATA;
      break;
    }
    at += 12;
    while (at + 2 <= end && mlcc_be16(s + at) != 0xff93) { /* the tile-part header */
      uint32_t marker = mlcc_be16(s + at);
      if (at + 4 > end || (marker >> 8) != 0xff) {
        st = MLCC_ERR_BAD_DATA;
        break;
      }
      if (marker != 0xff58 && marker != 0xff64) { /* only PLT and COM: no tile-specific coding styles */
        st = MLCC_ERR_UNSUPPORTED_DATA;
        break;
      }
      at += 2 + mlcc_be16(s + at + 2);
    }
    if (st != MLCC_OK) break;
    at += 2; /* SOD */
    if (at > end) {
      st = MLCC_ERR_BAD_DATA;
      break;
    }
    uint8_t *grown = realloc(data[tile], (size_t)(size[tile] + (end - at) + 1));
    if (!grown) {
      st = MLCC_ERR_OUT_OF_MEMORY;
      break;
    }
    memcpy(grown + size[tile], s + at, (size_t)(end - at));
    data[tile] = grown, size[tile] += end - at;
    at = end;
  }
  for (int c = 0; c < j.nc && st == MLCC_OK; ++c)
    if (!(planes[c] = calloc((size_t)(W * H), 1))) st = MLCC_ERR_OUT_OF_MEMORY;
  for (int64_t t = 0; t < ntiles && st == MLCC_OK; ++t) st = mlcc_j2k_tile(&j, t, data[t], size[t], planes);
  if (st == MLCC_OK && !(rgb = malloc((size_t)(3 * W)))) st = MLCC_ERR_OUT_OF_MEMORY;
  for (int64_t y = 0; y < H && st == MLCC_OK; ++y) {
    for (int64_t x = 0; x < W; ++x)
      for (int k = 0; k < 3; ++k) rgb[3 * x + k] = planes[j.nc >= 3 ? k : 0][y * W + x]; /* gray (+ alpha): repeated */
    mlcc_img_row(img, y, rgb);
  }
  for (int64_t t = 0; data && t < ntiles; ++t) free(data[t]);
  for (int c = 0; c < 4; ++c) free(planes[c]);
  free(data), free(size), free(rgb);
  return st;
}

/* A JP2 file (its jp2c box) or a bare codestream. */
static int mlcc_jpeg2k(mlcc_img *img, const uint8_t *s, int64_t n) {
  if (n >= 4 && s[0] == 0xff && s[1] == 0x4f && s[2] == 0xff && s[3] == 0x51) return mlcc_j2k_stream(img, s, n);
  int64_t at = 0;
  while (at + 8 <= n) {
    int64_t len = mlcc_be32(s + at), head = 8;
    const uint8_t *type = s + at + 4;
    if (len == 1) {
      if (at + 16 > n) return MLCC_ERR_BAD_DATA;
      len = (int64_t)mlcc_be32(s + at + 8) << 32 | mlcc_be32(s + at + 12), head = 16;
    } else if (len == 0) {
      len = n - at;
    }
    if (len < head || len > n - at) return MLCC_ERR_BAD_DATA;
    if (!memcmp(type, "jp2h", 4)) { /* colour: sRGB or greyscale only; no palette */
      for (int64_t b = at + head; b + 8 <= at + len;) {
        int64_t blen = mlcc_be32(s + b);
        if (blen < 8 || blen > at + len - b) return MLCC_ERR_BAD_DATA;
        if (!memcmp(s + b + 4, "pclr", 4)) return MLCC_ERR_UNSUPPORTED_DATA;
        if (!memcmp(s + b + 4, "colr", 4) && blen >= 15 && s[b + 8] == 1) {
          uint32_t cs = mlcc_be32(s + b + 11);
          if (cs != 16 && cs != 17) return MLCC_ERR_UNSUPPORTED_DATA;
        }
        b += blen;
      }
    }
    if (!memcmp(type, "jp2c", 4)) {
      if (len - head < 4 || s[at + head] != 0xff || s[at + head + 1] != 0x4f) return MLCC_ERR_BAD_DATA;
      return mlcc_j2k_stream(img, s + at + head, len - head);
    }
    at += len;
  }
  return MLCC_ERR_BAD_DATA;
}

#endif
