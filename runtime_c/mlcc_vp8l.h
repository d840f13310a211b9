/* mlcc_vp8l.h: lossless WebP (a VP8L chunk: RFC 9649, "WebP Lossless Bitstream") for mlcc_webp.h.
 *
 * Prefix codes (simple, or from code-length codes; a one-symbol code reads no bits, any other must be
 * complete, as libwebp requires), meta prefix codes per block of the image, LZ77 backward references with
 * the 120 short-distance plane codes, the colour cache, and the four transforms (predictor, cross-colour,
 * subtract-green, colour indexing with pixel bundling) inverted in reverse order. The result is exact (the
 * ARGB pixels are the file's); alpha is then dropped. An image with more than 4096 distinct prefix-code
 * groups in use is refused (MLCC_ERR_UNSUPPORTED_DATA: libwebp's encoder writes at most a few thousand). */
#ifndef MLCC_VP8L_H
#define MLCC_VP8L_H

/* Distance codes 1 to 120: offsets {dx, dy} to the pixel dy rows up and dx columns left (RFC 9649 4.2.2). */
static const int8_t mlcc_vp8l_plane[120][2] = {
  {0, 1}, {1, 0}, {1, 1}, {-1, 1}, {0, 2}, {2, 0}, {1, 2}, {-1, 2}, {2, 1}, {-2, 1}, {2, 2}, {-2, 2},
  {0, 3}, {3, 0}, {1, 3}, {-1, 3}, {3, 1}, {-3, 1}, {2, 3}, {-2, 3}, {3, 2}, {-3, 2}, {0, 4}, {4, 0},
  {1, 4}, {-1, 4}, {4, 1}, {-4, 1}, {3, 3}, {-3, 3}, {2, 4}, {-2, 4}, {4, 2}, {-4, 2}, {0, 5}, {3, 4},
  {-3, 4}, {4, 3}, {-4, 3}, {5, 0}, {1, 5}, {-1, 5}, {5, 1}, {-5, 1}, {2, 5}, {-2, 5}, {5, 2}, {-5, 2},
  {4, 4}, {-4, 4}, {3, 5}, {-3, 5}, {5, 3}, {-5, 3}, {0, 6}, {6, 0}, {1, 6}, {-1, 6}, {6, 1}, {-6, 1},
  {2, 6}, {-2, 6}, {6, 2}, {-6, 2}, {4, 5}, {-4, 5}, {5, 4}, {-5, 4}, {3, 6}, {-3, 6}, {6, 3}, {-6, 3},
  {0, 7}, {7, 0}, {1, 7}, {-1, 7}, {5, 5}, {-5, 5}, {7, 1}, {-7, 1}, {4, 6}, {-4, 6}, {6, 4}, {-6, 4},
  {2, 7}, {-2, 7}, {7, 2}, {-7, 2}, {3, 7}, {-3, 7}, {7, 3}, {-7, 3}, {5, 6}, {-5, 6}, {6, 5}, {-6, 5},
  {8, 0}, {4, 7}, {-4, 7}, {7, 4}, {-7, 4}, {8, 1}, {8, 2}, {6, 6}, {-6, 6}, {8, 3}, {5, 7}, {-5, 7},
  {7, 5}, {-7, 5}, {8, 4}, {6, 7}, {-6, 7}, {7, 6}, {-7, 6}, {8, 5}, {7, 7}, {-7, 7}, {8, 6}, {8, 7},
};
static const uint8_t mlcc_vp8l_order[19] = {17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* ---- bits, least significant first ---- */

typedef struct {
  const uint8_t *s;
  int64_t n, at;
  uint64_t bits;
  int count, bad; /* bad: bits past the end were needed */
} mlcc_lbits;

static void mlcc_lbits_fill(mlcc_lbits *b) {
  while (b->count <= 56 && b->at < b->n) b->bits |= (uint64_t)b->s[b->at++] << b->count, b->count += 8;
}

static uint32_t mlcc_lread(mlcc_lbits *b, int k) { /* k <= 32 */
  if (b->count < k) mlcc_lbits_fill(b);
  if (b->count < k) {
    b->bad = 1;
    return 0;
  }
  uint32_t v = (uint32_t)(b->bits & ((1ull << k) - 1));
  b->bits >>= k, b->count -= k;
  return v;
}

/* ---- prefix codes ---- */

typedef struct {
  uint16_t count[16];
  uint16_t *symbol;   /* the coded symbols by code */
  uint16_t fast[256]; /* a code of up to 8 bits by the stream's next 8: length << 12 | symbol; 0 if longer */
  int single;         /* the symbol of a one-symbol code, read with no bits; else -1 */
} mlcc_lcode;

static int mlcc_lcode_build(mlcc_lcode *h, const uint8_t *len, int n) {
  int coded = 0, last = 0, left = 1;
  memset(h->count, 0, sizeof h->count);
  h->symbol = NULL, h->single = -1;
  for (int i = 0; i < n; ++i)
    if (len[i]) h->count[len[i]]++, ++coded, last = i;
  if (coded == 0) return MLCC_ERR_BAD_DATA;
  if (coded == 1) {
    h->single = last;
    return MLCC_OK;
  }
  for (int l = 1; l < 16; ++l)
    if ((left = 2 * left - h->count[l]) < 0) return MLCC_ERR_BAD_DATA; /* over-subscribed */
  if (left != 0) return MLCC_ERR_BAD_DATA;                              /* incomplete */
  if (!(h->symbol = malloc(sizeof *h->symbol * (size_t)coded))) return MLCC_ERR_OUT_OF_MEMORY;
  mlcc_huff_index(h->count, len, n, h->symbol, h->fast, 8);
  return MLCC_OK;
}

static int mlcc_lsym(mlcc_lbits *b, const mlcc_lcode *h) {
  if (h->single >= 0) return h->single;
  if (b->count < 15) mlcc_lbits_fill(b);
  uint16_t e = h->fast[b->bits & 255];
  if (e && (e >> 12) <= b->count) {
    b->bits >>= e >> 12, b->count -= e >> 12;
    return e & 4095;
  }
  for (int l = 1, code = 0, first = 0, index = 0; l < 16; ++l, code <<= 1) {
    code |= (int)mlcc_lread(b, 1);
    if (b->bad) return 0;
    if (code - h->count[l] < first) return h->symbol[index + (code - first)];
    index += h->count[l];
    first = (first + h->count[l]) << 1;
  }
  b->bad = 1; /* not reached: the code is complete */
  return 0;
}

/* One prefix code for an alphabet of n symbols (RFC 9649 section 3.7.2.1). */
static int mlcc_lcode_read(mlcc_lbits *b, mlcc_lcode *h, int n, uint8_t *len /* 2328 */) {
  memset(len, 0, (size_t)(n > 256 ? n : 256));
  if (mlcc_lread(b, 1)) { /* simple: one or two symbols */
    int two = (int)mlcc_lread(b, 1);
    len[mlcc_lread(b, mlcc_lread(b, 1) ? 8 : 1)] = 1;
    if (two) len[mlcc_lread(b, 8)] = 1;
    return b->bad ? MLCC_ERR_BAD_DATA : mlcc_lcode_build(h, len, n);
  }
  uint8_t clen[19] = {0};
  int ncl = 4 + (int)mlcc_lread(b, 4);
  for (int i = 0; i < ncl; ++i) clen[mlcc_vp8l_order[i]] = (uint8_t)mlcc_lread(b, 3);
  mlcc_lcode lc;
  int st = b->bad ? MLCC_ERR_BAD_DATA : mlcc_lcode_build(&lc, clen, 19);
  if (st != MLCC_OK) return st;
  int max = n, prev = 8;
  if (mlcc_lread(b, 1)) {
    max = 2 + (int)mlcc_lread(b, 2 + 2 * (int)mlcc_lread(b, 3));
    if (max > n) st = MLCC_ERR_BAD_DATA;
  }
  for (int i = 0; i < n && max-- > 0 && st == MLCC_OK && !b->bad;) {
    int c = mlcc_lsym(b, &lc);
    if (c < 16) {
      len[i++] = (uint8_t)c;
      if (c) prev = c;
      continue;
    }
    int repeat = c == 16 ? 3 + (int)mlcc_lread(b, 2) : c == 17 ? 3 + (int)mlcc_lread(b, 3) : 11 + (int)mlcc_lread(b, 7);
    if (i + repeat > n) st = MLCC_ERR_BAD_DATA;
    else memset(len + i, c == 16 ? prev : 0, (size_t)repeat), i += repeat;
  }
  free(lc.symbol);
  if (st == MLCC_OK && b->bad) st = MLCC_ERR_BAD_DATA;
  return st == MLCC_OK ? mlcc_lcode_build(h, len, n) : st;
}

/* ---- an entropy-coded image (RFC 9649 section 5) ---- */

typedef struct {
  mlcc_lbits b;
  uint8_t len[256 + 24 + 2048];
} mlcc_vp8l_dec;

static int64_t mlcc_vp8l_sub(int64_t size, int bits) { return (size + (1 << bits) - 1) >> bits; }

static int64_t mlcc_vp8l_length(mlcc_lbits *b, int sym) { /* a length or distance from its prefix symbol */
  if (sym < 4) return sym + 1;
  int extra = (sym - 2) >> 1;
  return ((int64_t)(2 + (sym & 1)) << extra) + mlcc_lread(b, extra) + 1;
}

static void mlcc_vp8l_free_codes(mlcc_lcode *codes, int64_t n) {
  for (int64_t i = 0; i < n; ++i) free(codes[i].symbol);
  free(codes);
}

/* Decodes a w x h image into *out (malloc'd ARGB); the main image (level0) may have meta prefix codes. */
static int mlcc_vp8l_image(mlcc_vp8l_dec *d, int64_t w, int64_t h, int level0, uint32_t **out) {
  mlcc_lbits *b = &d->b;
  int cache_bits = 0, meta_bits = 0, st = MLCC_OK;
  if (mlcc_lread(b, 1) && ((cache_bits = (int)mlcc_lread(b, 4)) < 1 || cache_bits > 11)) return MLCC_ERR_BAD_DATA;
  uint32_t *meta = NULL;
  int64_t meta_w = 1, ngroups = 1, used = 1;
  int32_t *group_of = NULL; /* meta code -> index of its decoded codes, or -1 where no block uses it */
  if (level0 && mlcc_lread(b, 1)) {
    meta_bits = 2 + (int)mlcc_lread(b, 3);
    meta_w = mlcc_vp8l_sub(w, meta_bits);
    if ((st = mlcc_vp8l_image(d, meta_w, mlcc_vp8l_sub(h, meta_bits), 0, &meta)) != MLCC_OK) return st;
    int64_t nmeta = meta_w * mlcc_vp8l_sub(h, meta_bits);
    for (int64_t i = 0; i < nmeta; ++i)
      if ((int64_t)(meta[i] >> 8 & 0xffff) >= ngroups) ngroups = (meta[i] >> 8 & 0xffff) + 1;
    if (!(group_of = malloc(sizeof *group_of * (size_t)ngroups))) st = MLCC_ERR_OUT_OF_MEMORY;
    used = 0;
    for (int64_t i = 0; i < ngroups && st == MLCC_OK; ++i) group_of[i] = -1;
    for (int64_t i = 0; i < nmeta && st == MLCC_OK; ++i)
      if (group_of[meta[i] >> 8 & 0xffff] < 0) group_of[meta[i] >> 8 & 0xffff] = (int32_t)used++;
    if (st == MLCC_OK && used > 4096) st = MLCC_ERR_UNSUPPORTED_DATA;
  }
  const int sizes[5] = {256 + 24 + (cache_bits ? 1 << cache_bits : 0), 256, 256, 256, 40};
  mlcc_lcode *codes = st == MLCC_OK ? calloc((size_t)used * 5, sizeof *codes) : NULL;
  if (st == MLCC_OK && !codes) st = MLCC_ERR_OUT_OF_MEMORY;
  for (int64_t g = 0; g < ngroups && st == MLCC_OK; ++g) {
    int64_t at = group_of ? group_of[g] : 0;
    for (int k = 0; k < 5 && st == MLCC_OK; ++k) {
      mlcc_lcode spare, *c = at >= 0 ? &codes[5 * at + k] : &spare; /* a group no block uses is read, then dropped */
      st = mlcc_lcode_read(b, c, sizes[k], d->len);
      if (at < 0) free(spare.symbol);
    }
  }
  uint32_t *px = NULL, *cache = NULL;
  if (st == MLCC_OK) {
    px = malloc(sizeof *px * (size_t)(w * h));
    cache = cache_bits ? calloc((size_t)1 << cache_bits, sizeof *cache) : NULL;
    if (!px || (cache_bits && !cache)) st = MLCC_ERR_OUT_OF_MEMORY;
  }
  int64_t total = w * h, pos = 0, cached = 0, x = 0, y = 0, mask = (1 << meta_bits) - 1;
  const mlcc_lcode *gc = codes;
#define MLCC_VP8L_GROUP() (codes + 5 * group_of[meta[(y >> meta_bits) * meta_w + (x >> meta_bits)] >> 8 & 0xffff])
  while (st == MLCC_OK && pos < total) {
    if (meta && (x & mask) == 0) gc = MLCC_VP8L_GROUP();
    int sym = mlcc_lsym(b, &gc[0]);
    if (sym < 256) { /* a literal: green, then red, blue, alpha */
      uint32_t r = (uint32_t)mlcc_lsym(b, &gc[1]), bl = (uint32_t)mlcc_lsym(b, &gc[2]);
      px[pos++] = (uint32_t)mlcc_lsym(b, &gc[3]) << 24 | r << 16 | (uint32_t)sym << 8 | bl;
      if (++x == w) x = 0, ++y;
    } else if (sym < 256 + 24) { /* a backward reference */
      int64_t len = mlcc_vp8l_length(b, sym - 256), code = mlcc_vp8l_length(b, mlcc_lsym(b, &gc[4])), dist;
      if (code > 120) {
        dist = code - 120;
      } else {
        dist = mlcc_vp8l_plane[code - 1][1] * w + mlcc_vp8l_plane[code - 1][0];
        if (dist < 1) dist = 1;
      }
      if (dist > pos || len > total - pos) {
        st = MLCC_ERR_BAD_DATA;
        break;
      }
      for (int64_t i = 0; i < len; ++i, ++pos) px[pos] = px[pos - dist];
      for (x += len; x >= w; x -= w) ++y;
      if (meta && pos < total && (x & mask)) gc = MLCC_VP8L_GROUP(); /* the block the reference ends in */
    } else { /* a colour cache entry */
      for (; cached < pos; ++cached) cache[(px[cached] * 0x1e35a7bdu) >> (32 - cache_bits)] = px[cached];
      px[pos++] = cache[sym - 256 - 24];
      if (++x == w) x = 0, ++y;
    }
    for (; cache && cached < pos; ++cached) cache[(px[cached] * 0x1e35a7bdu) >> (32 - cache_bits)] = px[cached];
    if (b->bad) st = MLCC_ERR_BAD_DATA;
  }
#undef MLCC_VP8L_GROUP
  free(meta), free(group_of), free(cache);
  if (codes) mlcc_vp8l_free_codes(codes, used * 5);
  if (st != MLCC_OK) free(px), px = NULL;
  *out = px;
  return st;
}

/* ---- transforms (RFC 9649 section 4), inverted ---- */

static uint32_t mlcc_vp8l_add(uint32_t a, uint32_t b) { /* per channel, modulo 256 */
  uint32_t alpha_green = (a & 0xff00ff00u) + (b & 0xff00ff00u), red_blue = (a & 0x00ff00ffu) + (b & 0x00ff00ffu);
  return (alpha_green & 0xff00ff00u) | (red_blue & 0x00ff00ffu);
}

static uint32_t mlcc_vp8l_avg(uint32_t a, uint32_t b) { return (((a ^ b) & 0xfefefefeu) >> 1) + (a & b); }

static int mlcc_vp8l_ch(uint32_t v, int shift) { return (int)(v >> shift & 255); }

static uint32_t mlcc_vp8l_predict(int mode, uint32_t L, uint32_t T, uint32_t TR, uint32_t TL) {
  uint32_t out = 0;
  switch (mode) {
  case 1: return L;
  case 2: return T;
  case 3: return TR;
  case 4: return TL;
  case 5: return mlcc_vp8l_avg(mlcc_vp8l_avg(L, TR), T);
  case 6: return mlcc_vp8l_avg(L, TL);
  case 7: return mlcc_vp8l_avg(L, T);
  case 8: return mlcc_vp8l_avg(TL, T);
  case 9: return mlcc_vp8l_avg(T, TR);
  case 10: return mlcc_vp8l_avg(mlcc_vp8l_avg(L, TL), mlcc_vp8l_avg(T, TR));
  case 11: { /* Select: the one of L and T farther (Manhattan, over the channels) from the gradient's estimate */
    int d = 0;
    for (int s = 0; s < 32; s += 8) {
      int l = mlcc_vp8l_ch(L, s), t = mlcc_vp8l_ch(T, s), tl = mlcc_vp8l_ch(TL, s);
      d += (l > tl ? l - tl : tl - l) - (t > tl ? t - tl : tl - t);
    }
    return d <= 0 ? T : L;
  }
  case 12: /* ClampAddSubtractFull */
  case 13: /* ClampAddSubtractHalf */
    for (int s = 0; s < 32; s += 8) {
      int v, tl = mlcc_vp8l_ch(TL, s);
      if (mode == 12) {
        v = mlcc_vp8l_ch(L, s) + mlcc_vp8l_ch(T, s) - tl;
      } else {
        int a = (mlcc_vp8l_ch(L, s) + mlcc_vp8l_ch(T, s)) >> 1;
        v = a + (a - tl) / 2; /* C division: toward zero, as the format says */
      }
      out |= (uint32_t)(v < 0 ? 0 : v > 255 ? 255 : v) << s;
    }
    return out;
  default: return 0xff000000u; /* 0, and the unused 14 and 15 */
  }
}

typedef struct {
  int type, bits;
  int64_t w;     /* the image width the transform applies at (before its own packing, for colour indexing) */
  uint32_t *data; /* predictor modes, colour multipliers by block; or the colour map */
} mlcc_vp8l_transform;

/* Inverts transform t on a w x h image (for colour indexing: a packed image, replaced by its unpacked one). */
static int mlcc_vp8l_invert(const mlcc_vp8l_transform *t, uint32_t **image, int64_t w, int64_t h) {
  uint32_t *px = *image;
  int64_t tw = mlcc_vp8l_sub(t->w, t->bits);
  if (t->type == 0) { /* predictor */
    for (int64_t y = 0; y < h; ++y) {
      uint32_t *row = px + y * w, *up = row - w;
      const uint32_t *modes = t->data + (y >> t->bits) * tw;
      for (int64_t x = 0; x < w; ++x) {
        uint32_t pred;
        if (y == 0) {
          pred = x == 0 ? 0xff000000u : row[x - 1];
        } else if (x == 0) {
          pred = up[0];
        } else {
          uint32_t right = x == w - 1 ? row[0] : up[x + 1]; /* above-right: past the end, the row's first */
          pred = mlcc_vp8l_predict(modes[x >> t->bits] >> 8 & 15, row[x - 1], up[x], right, up[x - 1]);
        }
        row[x] = mlcc_vp8l_add(row[x], pred);
      }
    }
  } else if (t->type == 1) { /* cross-colour */
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        uint32_t m = t->data[(y >> t->bits) * tw + (x >> t->bits)], v = px[y * w + x];
        int g = (int8_t)(v >> 8), r = (int)(v >> 16 & 255), b = (int)(v & 255);
        r = (r + (((int8_t)m * g) >> 5)) & 255;
        b = (b + (((int8_t)(m >> 8) * g) >> 5) + (((int8_t)(m >> 16) * (int8_t)r) >> 5)) & 255;
        px[y * w + x] = (v & 0xff00ff00u) | (uint32_t)r << 16 | (uint32_t)b;
      }
  } else if (t->type == 2) { /* subtract green */
    for (int64_t i = 0; i < w * h; ++i) {
      uint32_t g = px[i] >> 8 & 255;
      px[i] = (px[i] & 0xff00ff00u) | (((px[i] >> 16) + g) & 255) << 16 | ((px[i] + g) & 255);
    }
  } else { /* colour indexing: 8 >> bits-bit indices, first in the low bits, into a map padded with zeros */
    uint32_t *full = malloc(sizeof *full * (size_t)(t->w * h));
    if (!full) return MLCC_ERR_OUT_OF_MEMORY;
    int per = 8 >> t->bits;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < t->w; ++x) {
        uint32_t packed = px[y * w + (x >> t->bits)] >> 8 & 255;
        full[y * t->w + x] = t->data[(packed >> (per * (x & ((1 << t->bits) - 1)))) & ((1u << per) - 1)];
      }
    free(px);
    *image = full;
  }
  return MLCC_OK;
}

/* A VP8L chunk decoded into img; its width and height to *w, *h. */
static int mlcc_vp8l(mlcc_img *img, const uint8_t *s, int64_t n, int64_t *w, int64_t *h) {
  if (n < 5 || s[0] != 0x2f) return MLCC_ERR_BAD_DATA;
  mlcc_vp8l_dec *d = malloc(sizeof *d);
  if (!d) return MLCC_ERR_OUT_OF_MEMORY;
  mlcc_lbits *b = &d->b;
  memset(b, 0, sizeof *b);
  b->s = s + 1, b->n = n - 1;
  *w = 1 + mlcc_lread(b, 14), *h = 1 + mlcc_lread(b, 14);
  mlcc_lread(b, 1); /* alpha is used: not read */
  int st = mlcc_lread(b, 3) ? MLCC_ERR_BAD_DATA : mlcc_img_begin(img, *w, *h);
  mlcc_vp8l_transform t[4];
  int nt = 0, seen = 0;
  int64_t xs = *w;
  while (st == MLCC_OK && mlcc_lread(b, 1)) {
    mlcc_vp8l_transform *tr = &t[nt];
    tr->type = (int)mlcc_lread(b, 2), tr->w = xs, tr->bits = 0, tr->data = NULL;
    if (seen >> tr->type & 1) {
      st = MLCC_ERR_BAD_DATA;
      break;
    }
    seen |= 1 << tr->type, ++nt;
    if (tr->type <= 1) {
      tr->bits = 2 + (int)mlcc_lread(b, 3);
      st = mlcc_vp8l_image(d, mlcc_vp8l_sub(xs, tr->bits), mlcc_vp8l_sub(*h, tr->bits), 0, &tr->data);
    } else if (tr->type == 3) {
      int colors = 1 + (int)mlcc_lread(b, 8);
      tr->bits = colors > 16 ? 0 : colors > 4 ? 1 : colors > 2 ? 2 : 3;
      uint32_t *map = NULL;
      st = mlcc_vp8l_image(d, colors, 1, 0, &map);
      if (st == MLCC_OK && !(tr->data = calloc((size_t)1 << (8 >> tr->bits), sizeof *tr->data)))
        st = MLCC_ERR_OUT_OF_MEMORY;
      for (int i = 0; st == MLCC_OK && i < colors; ++i) /* each entry is a difference from the one before */
        tr->data[i] = i ? mlcc_vp8l_add(map[i], tr->data[i - 1]) : map[0];
      free(map);
      xs = mlcc_vp8l_sub(xs, tr->bits);
    }
  }
  if (st == MLCC_OK && b->bad) st = MLCC_ERR_BAD_DATA;
  uint32_t *px = NULL;
  if (st == MLCC_OK) st = mlcc_vp8l_image(d, xs, *h, 1, &px);
  for (int i = nt - 1; i >= 0 && st == MLCC_OK; --i) {
    st = mlcc_vp8l_invert(&t[i], &px, t[i].type == 3 ? mlcc_vp8l_sub(t[i].w, t[i].bits) : t[i].w, *h);
  }
  uint8_t *rgb = st == MLCC_OK ? malloc((size_t)(3 * *w)) : NULL;
  if (st == MLCC_OK && !rgb) st = MLCC_ERR_OUT_OF_MEMORY;
  for (int64_t y = 0; y < *h && st == MLCC_OK; ++y) {
    for (int64_t x = 0; x < *w; ++x) {
      uint32_t v = px[y * *w + x];
      rgb[3 * x] = (uint8_t)(v >> 16), rgb[3 * x + 1] = (uint8_t)(v >> 8), rgb[3 * x + 2] = (uint8_t)v;
    }
    mlcc_img_row(img, y, rgb);
  }
  for (int i = 0; i < nt; ++i) free(t[i].data);
  free(px), free(rgb), free(d);
  return st;
}

#endif
