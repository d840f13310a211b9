/* mlcc_jpeg.h: JPEG for mlcc_image.h, decoded as libjpeg(-turbo) does with its defaults (which Pillow uses):
 * the "islow" integer inverse DCT (jidctint.c's constants and rounding), "fancy" triangular chroma upsampling
 * for 2x1, 1x2 and 2x2 subsampling with libjpeg's alternating rounding biases and edge rows repeated (other
 * integral factors replicate samples, as libjpeg's int_upsample), and its
 * fixed-point YCbCr to RGB tables. Huffman coding, sequential (baseline and extended) or progressive
 * (spectral selection and successive approximation; coefficients are gathered over all scans, then
 * transformed, as libjpeg does for a whole file: its block smoothing only applies to coefficients a file
 * leaves unrefined, and is not done here), 8-bit samples, 1 (gray), 3 (YCbCr or RGB, told as libjpeg tells
 * them) or 4 (CMYK, or YCCK where an Adobe marker says so; to RGB as Pillow converts CMYK) components,
 * sampling factors 1 to 4 (at most 10 blocks per MCU), restart intervals. Arithmetic-coded, lossless,
 * hierarchical and 12-bit streams are refused (MLCC_ERR_UNSUPPORTED_DATA). */
#ifndef MLCC_JPEG_H
#define MLCC_JPEG_H

#define MLCC_JLOOK 9

typedef struct {
  uint8_t bits[17];  /* codes per length */
  uint8_t values[256];
  int32_t maxcode[18], valoffset[18];
  uint16_t look[1 << MLCC_JLOOK]; /* a code of up to 9 bits by its next 9 bits: length << 8 | symbol */
  int defined;
} mlcc_jhuff;

typedef struct {
  int id, h, v, tq, td, ta;
  int64_t bw, bh; /* the plane in blocks (whole MCUs) */
  int64_t w, h_px; /* the component's own size in samples (libjpeg's downsampled_width/height) */
  uint8_t *plane;  /* bw * 8 by bh * 8 samples */
  int16_t *coef;   /* bw * bh blocks of 64 coefficients, natural order */
  uint16_t q[64];  /* its quantisation table (natural order), latched at its first scan */
  int latched;
  int64_t dc;
} mlcc_jcomp;

typedef struct {
  const uint8_t *s;
  int64_t n, at;
  uint64_t bits; /* the next `count` bits of entropy-coded data, most significant first */
  int count, marker_hit;
  uint16_t q[4][64];
  mlcc_jhuff dc[4], ac[4];
  mlcc_jcomp c[4];
  int nc, hmax, vmax, restart, progressive;
  int jfif, adobe, adobe_transform; /* markers seen: APP0 "JFIF", APP14 "Adobe" (and its transform) */
  int64_t w, h, mcux, mcuy;
} mlcc_jpeg_dec;

static const uint8_t mlcc_zigzag[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

static int mlcc_jhuff_build(mlcc_jhuff *t) {
  int32_t code = 0, k = 0;
  memset(t->look, 0, sizeof t->look);
  for (int len = 1; len <= 16; ++len) {
    t->valoffset[len] = k - code;
    for (int i = 0; i < t->bits[len] && len <= MLCC_JLOOK; ++i) { /* every 9-bit window that starts with it */
      int first = (code + i) << (MLCC_JLOOK - len), count = 1 << (MLCC_JLOOK - len);
      for (int j = 0; j < count && first + j < (1 << MLCC_JLOOK); ++j)
        t->look[first + j] = (uint16_t)(len << 8 | t->values[(k + i) & 255]);
    }
    k += t->bits[len];
    code += t->bits[len];
    t->maxcode[len] = t->bits[len] ? code - 1 : -1;
    if (code > (1 << len)) return 1;
    code <<= 1;
  }
  t->maxcode[17] = 0x7fffffff;
  t->defined = 1;
  return 0;
}

/* Keep at least 57 bits of entropy-coded data in the accumulator (most significant first), stuffed zero
   bytes removed; zeros once a marker is reached, as libjpeg does. */
static inline void mlcc_jfill(mlcc_jpeg_dec *d) {
  while (d->count <= 56) {
    uint64_t byte = 0;
    if (!d->marker_hit && d->at < d->n) {
      byte = d->s[d->at];
      if (byte == 0xff) {
        if (d->at + 1 < d->n && d->s[d->at + 1] == 0x00) {
          d->at += 2;
        } else {
          d->marker_hit = 1;
          byte = 0;
        }
      } else {
        d->at++;
      }
    }
    d->bits |= byte << (56 - d->count);
    d->count += 8;
  }
}

/* The next n bits (n <= 16) as an unsigned number. */
static inline int32_t mlcc_jbits(mlcc_jpeg_dec *d, int n) {
  if (n == 0) return 0;
  if (d->count < n) mlcc_jfill(d);
  int32_t v = (int32_t)(d->bits >> (64 - n));
  d->bits <<= n;
  d->count -= n;
  return v;
}

static inline int mlcc_jbit(mlcc_jpeg_dec *d) { return (int)mlcc_jbits(d, 1); }

/* The next Huffman-coded symbol: codes up to 9 bits from a table, longer ones against maxcode. A code no
   table entry matches reads as symbol 0 after 17 bits, as libjpeg fakes it (it warns and goes on): a
   slightly damaged stream decodes to the image Pillow shows. */
static inline int mlcc_jdecode(mlcc_jpeg_dec *d, const mlcc_jhuff *t) {
  if (d->count < 17) mlcc_jfill(d);
  uint16_t e = t->look[d->bits >> (64 - MLCC_JLOOK)];
  int len = e >> 8;
  if (len) {
    d->bits <<= len;
    d->count -= len;
    return e & 255;
  }
  for (len = MLCC_JLOOK + 1; len <= 16; ++len) {
    int32_t code = (int32_t)(d->bits >> (64 - len));
    if (code <= t->maxcode[len]) {
      d->bits <<= len;
      d->count -= len;
      return t->values[(code + t->valoffset[len]) & 255];
    }
  }
  d->bits <<= 17;
  d->count -= 17;
  return 0;
}

/* A coefficient of `size` bits from its code (JPEG's EXTEND). */
static inline int32_t mlcc_jreceive(mlcc_jpeg_dec *d, int size) {
  if (size == 0) return 0;
  int32_t v = mlcc_jbits(d, size);
  return v < (1 << (size - 1)) ? v - (1 << size) + 1 : v;
}

/* jidctint.c's islow inverse DCT of one dequantised block into 8x8 samples. */
static uint8_t mlcc_jclamp(int64_t v) { /* libjpeg's post-IDCT range table, indexed by v & 1023 */
  int i = v & 1023;
  return (uint8_t)(i < 128 ? i + 128 : i < 512 ? 255 : i < 896 ? 0 : i - 896);
}

#define MLCC_DESCALE(x, n) (((x) + ((int64_t)1 << ((n)-1))) >> (n))

static void mlcc_jidct(const int64_t *in, uint8_t *out, int64_t stride) {
  int64_t ws[64]; /* libjpeg's JLONG arithmetic (64-bit on LP64) */
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < 8; ++i) {
      /* pass 0 reads column i of `in` and writes column i of ws; pass 1 reads row i of ws */
      const int64_t *p = pass ? ws + 8 * i : in + i;
      int st = pass ? 1 : 8;
      if (!(p[st] | p[2 * st] | p[3 * st] | p[4 * st] | p[5 * st] | p[6 * st] | p[7 * st])) {
        /* only the DC term: the same result as the full transform, as libjpeg's shortcut */
        for (int k = 0; k < 8; ++k) {
          if (pass) out[i * stride + k] = mlcc_jclamp(MLCC_DESCALE(p[0], 2 + 3));
          else ws[8 * k + i] = p[0] * 4;
        }
        continue;
      }
      int64_t z1, z2, z3, z4, z5, tmp0, tmp1, tmp2, tmp3, tmp10, tmp11, tmp12, tmp13;
      z2 = p[2 * st], z3 = p[6 * st];
      z1 = (z2 + z3) * 4433;
      tmp2 = z1 + z3 * -15137;
      tmp3 = z1 + z2 * 6270;
      tmp0 = (p[0] + p[4 * st]) * 8192;
      tmp1 = (p[0] - p[4 * st]) * 8192;
      tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
      tmp0 = p[7 * st], tmp1 = p[5 * st], tmp2 = p[3 * st], tmp3 = p[1 * st];
      z1 = tmp0 + tmp3, z2 = tmp1 + tmp2, z3 = tmp0 + tmp2, z4 = tmp1 + tmp3;
      z5 = (z3 + z4) * 9633;
      tmp0 *= 2446, tmp1 *= 16819, tmp2 *= 25172, tmp3 *= 12299;
      z1 *= -7373, z2 *= -20995, z3 *= -16069, z4 *= -3196;
      z3 += z5, z4 += z5;
      tmp0 += z1 + z3, tmp1 += z2 + z4, tmp2 += z2 + z3, tmp3 += z1 + z4;
      int64_t r[8] = {tmp10 + tmp3, tmp11 + tmp2, tmp12 + tmp1, tmp13 + tmp0,
                      tmp13 - tmp0, tmp12 - tmp1, tmp11 - tmp2, tmp10 - tmp3};
      for (int k = 0; k < 8; ++k) {
        if (pass) out[i * stride + k] = mlcc_jclamp(MLCC_DESCALE(r[k], 13 + 2 + 3));
        else ws[8 * k + i] = MLCC_DESCALE(r[k], 13 - 2);
      }
    }
  }
}

/* The scan in progress: spectral band, successive approximation, end-of-band run (progressive). */
typedef struct {
  int ss, se, ah, al;
  int64_t eobrun;
} mlcc_jband;

static int mlcc_jtables(const mlcc_jpeg_dec *d, const mlcc_jcomp *c, int need_dc, int need_ac) {
  return (!need_dc || d->dc[c->td].defined) && (!need_ac || d->ac[c->ta].defined);
}

/* Sequential: one whole block. Progressive: the scan's band (or bit) of it. Coefficients are stored in
   natural order, not dequantised. */
static int mlcc_jblock(mlcc_jpeg_dec *d, mlcc_jcomp *c, int16_t *coef, mlcc_jband *b) {
  if (b->ss == 0) { /* DC: first (or sequential) or a refining bit */
    if (b->ah == 0) {
      int t = mlcc_jdecode(d, &d->dc[c->td]);
      if (t > 15) return 1; /* libjpeg refuses such a DC table */
      c->dc += mlcc_jreceive(d, t);
      coef[0] = (int16_t)(c->dc * (1 << b->al)); /* libjpeg's JCOEF is 16 bits */
    } else if (mlcc_jbit(d)) {
      coef[0] = (int16_t)(coef[0] | (1 << b->al));
    }
    if (b->se == 0) return 0;
  }
  const mlcc_jhuff *ac = &d->ac[c->ta];
  int k = b->ss ? b->ss : 1;
  if (b->ah == 0) { /* AC first (or sequential) */
    if (b->eobrun > 0) {
      b->eobrun--;
      return 0;
    }
    for (; k <= b->se; ++k) {
      int rs = mlcc_jdecode(d, ac);
      if (rs < 0) return 1;
      int r = rs >> 4, size = rs & 15;
      if (size == 0) {
        if (r == 15) {
          k += 15;
          continue;
        }
        if (b->se != 63 || b->ss != 0) { /* progressive: a run of blocks ends the band */
          b->eobrun = (1 << r) - 1;
          if (r) b->eobrun += mlcc_jbits(d, r);
        }
        break;
      }
      k += r; /* a run past the band's end lands on its last coefficient, as libjpeg's padded order table */
      coef[mlcc_zigzag[k < 63 ? k : 63]] = (int16_t)(mlcc_jreceive(d, size) * (1 << b->al));
    }
    return 0;
  }
  /* AC refinement: a bit for each coefficient already nonzero, new ones of magnitude 1 << al */
  int p1 = 1 << b->al, m1 = -p1;
  if (b->eobrun == 0) {
    for (; k <= b->se; ++k) {
      int rs = mlcc_jdecode(d, ac);
      if (rs < 0) return 1;
      int r = rs >> 4, size = rs & 15, value = 0;
      if (size) {
        if (size != 1) return 1;
        value = mlcc_jbit(d) ? p1 : m1;
      } else if (r != 15) {
        b->eobrun = 1 << r;
        if (r) b->eobrun += mlcc_jbits(d, r);
        break;
      }
      do {
        int16_t *x = coef + mlcc_zigzag[k];
        if (*x != 0) {
          if (mlcc_jbit(d) && (*x & p1) == 0) *x = (int16_t)(*x >= 0 ? *x + p1 : *x + m1);
        } else if (--r < 0) {
          break;
        }
        ++k;
      } while (k <= b->se);
      if (value) {
        if (k > b->se) return 1;
        coef[mlcc_zigzag[k]] = (int16_t)value;
      }
    }
  }
  if (b->eobrun > 0) {
    for (; k <= b->se; ++k) {
      int16_t *x = coef + mlcc_zigzag[k];
      if (*x != 0 && mlcc_jbit(d) && (*x & p1) == 0) *x = (int16_t)(*x >= 0 ? *x + p1 : *x + m1);
    }
    b->eobrun--;
  }
  return 0;
}

/* Skip to just past the next RSTn marker and reset the predictions. */
static int mlcc_jrestart(mlcc_jpeg_dec *d, mlcc_jband *b) {
  d->count = 0, d->bits = 0;
  d->marker_hit = 0;
  while (d->at + 1 < d->n && !(d->s[d->at] == 0xff && d->s[d->at + 1] >= 0xd0 && d->s[d->at + 1] <= 0xd7)) d->at++;
  if (d->at + 1 >= d->n) return 1;
  d->at += 2;
  for (int i = 0; i < d->nc; ++i) d->c[i].dc = 0;
  b->eobrun = 0;
  return 0;
}

static int mlcc_jscan(mlcc_jpeg_dec *d, const uint8_t *sos, int len) {
  int ns = sos[0];
  if (ns < 1 || ns > d->nc || len < 1 + 2 * ns + 3) return 1;
  mlcc_jcomp *in_scan[4];
  const uint8_t *ss = sos + 1 + 2 * ns;
  mlcc_jband b = {ss[0], ss[1], ss[2] >> 4, ss[2] & 15, 0};
  if (!d->progressive ? b.ss != 0 || b.se != 63 || b.ah != 0 || b.al != 0
                      : b.ss > b.se || b.se > 63 || (b.ss == 0) != (b.se == 0) || b.al > 13 || (b.ss && ns != 1))
    return 1;
  for (int i = 0, blocks = 0; i < ns; ++i) {
    int id = sos[1 + 2 * i], tables = sos[2 + 2 * i], k = 0;
    while (k < d->nc && d->c[k].id != id) ++k;
    if (k == d->nc || (tables >> 4) > 3 || (tables & 15) > 3) return 1;
    mlcc_jcomp *c = in_scan[i] = &d->c[k];
    blocks += ns == 1 ? 1 : c->h * c->v;
    if (blocks > 10) return 1; /* the standard's limit on blocks per MCU (libjpeg refuses more too) */
    c->td = tables >> 4, c->ta = tables & 15, c->dc = 0;
    if (!mlcc_jtables(d, c, b.ss == 0 && b.ah == 0, b.se > 0)) return 1;
    if (!c->latched) { /* the quantisation table in force at the component's first scan, as libjpeg */
      for (int z = 0; z < 64; ++z) c->q[mlcc_zigzag[z]] = d->q[c->tq][z];
      c->latched = 1;
    }
  }
  d->count = 0, d->bits = 0, d->marker_hit = 0;
  int64_t units = 0;
  if (ns == 1) { /* non-interleaved: the component's own blocks, row by row */
    mlcc_jcomp *c = in_scan[0];
    int64_t bx = (c->w + 7) / 8, by = (c->h_px + 7) / 8;
    for (int64_t y = 0; y < by; ++y)
      for (int64_t x = 0; x < bx; ++x) {
        if (d->restart && units && units % d->restart == 0 && mlcc_jrestart(d, &b)) return 1;
        if (mlcc_jblock(d, c, c->coef + (y * c->bw + x) * 64, &b)) return 1;
        ++units;
      }
    return 0;
  }
  for (int64_t my = 0; my < d->mcuy; ++my)
    for (int64_t mx = 0; mx < d->mcux; ++mx) {
      if (d->restart && units && units % d->restart == 0 && mlcc_jrestart(d, &b)) return 1;
      for (int i = 0; i < ns; ++i) {
        mlcc_jcomp *c = in_scan[i];
        for (int v = 0; v < c->v; ++v)
          for (int u = 0; u < c->h; ++u) {
            int64_t by = my * c->v + v, bx = mx * c->h + u;
            if (mlcc_jblock(d, c, c->coef + (by * c->bw + bx) * 64, &b)) return 1;
          }
      }
      ++units;
    }
  return 0;
}

/* Every block of every component dequantised and transformed into its plane. */
static void mlcc_jplanes(mlcc_jpeg_dec *d) {
  for (int i = 0; i < d->nc; ++i) {
    mlcc_jcomp *c = &d->c[i];
    for (int64_t by = 0; by < c->bh; ++by)
      for (int64_t bx = 0; bx < c->bw; ++bx) {
        const int16_t *coef = c->coef + (by * c->bw + bx) * 64;
        int64_t deq[64];
        for (int k = 0; k < 64; ++k) deq[k] = (int64_t)coef[k] * c->q[k];
        mlcc_jidct(deq, c->plane + by * 8 * c->bw * 8 + bx * 8, c->bw * 8);
      }
  }
}

/* Row y of component c upsampled to the image width into out (libjpeg's fancy upsampling where it applies). */
static void mlcc_jupsample(const mlcc_jpeg_dec *d, const mlcc_jcomp *c, int64_t y, uint8_t *out) {
  int64_t stride = c->bw * 8, cw = c->w;
  int hx = d->hmax / c->h, vx = d->vmax / c->v;
  if (hx == 1 && vx == 1) {
    memcpy(out, c->plane + y * stride, (size_t)d->w);
    return;
  }
  int64_t sy = y / vx;
  const uint8_t *near = c->plane + sy * stride;
  if (hx == 2 && vx == 1 && cw > 2) { /* h2v1 fancy */
    out[0] = near[0];
    out[1] = (uint8_t)((near[0] * 3 + near[1] + 2) >> 2);
    for (int64_t x = 1; x < cw - 1; ++x) {
      int v = near[x] * 3;
      out[2 * x] = (uint8_t)((v + near[x - 1] + 1) >> 2);
      out[2 * x + 1] = (uint8_t)((v + near[x + 1] + 2) >> 2);
    }
    out[2 * cw - 2] = (uint8_t)((near[cw - 1] * 3 + near[cw - 2] + 1) >> 2);
    out[2 * cw - 1] = near[cw - 1];
    return;
  }
  /* vertical fancy upsampling: the nearer row 3/4, the farther 1/4 (the edge rows repeat) */
  int64_t fy = y % 2 == 0 ? sy - 1 : sy + 1;
  if (fy < 0) fy = 0;
  if (fy > c->h_px - 1) fy = c->h_px - 1;
  const uint8_t *far = c->plane + fy * stride;
  if (hx == 1 && vx == 2) { /* h1v2 fancy (libjpeg-turbo's; rounding bias 1 above, 2 below) */
    for (int64_t x = 0; x < d->w; ++x) out[x] = (uint8_t)((near[x] * 3 + far[x] + 1 + (y % 2)) >> 2);
    return;
  }
  if (hx == 2 && vx == 2 && cw > 2) { /* h2v2 fancy: the same in both directions */
    int32_t this_sum = near[0] * 3 + far[0], next_sum = near[1] * 3 + far[1], last_sum;
    out[0] = (uint8_t)((this_sum * 4 + 8) >> 4);
    out[1] = (uint8_t)((this_sum * 3 + next_sum + 7) >> 4);
    last_sum = this_sum, this_sum = next_sum;
    for (int64_t x = 1; x < cw - 1; ++x) {
      next_sum = near[x + 1] * 3 + far[x + 1];
      out[2 * x] = (uint8_t)((this_sum * 3 + last_sum + 8) >> 4);
      out[2 * x + 1] = (uint8_t)((this_sum * 3 + next_sum + 7) >> 4);
      last_sum = this_sum, this_sum = next_sum;
    }
    out[2 * cw - 2] = (uint8_t)((this_sum * 3 + last_sum + 8) >> 4);
    out[2 * cw - 1] = (uint8_t)((this_sum * 4 + 7) >> 4);
    return;
  }
  for (int64_t x = 0; x < d->w; ++x) out[x] = near[x / hx]; /* other factors: replicated (int_upsample) */
}

/* The frame header: MLCC_OK, or a status (12-bit samples are not read). */
static int mlcc_jpeg_frame(mlcc_jpeg_dec *d, const uint8_t *f, int len) {
  if (len < 6) return MLCC_ERR_BAD_DATA;
  d->h = mlcc_be16(f + 1), d->w = mlcc_be16(f + 3), d->nc = f[5];
  if (f[0] != 8 || (d->nc != 1 && d->nc != 3 && d->nc != 4)) return MLCC_ERR_UNSUPPORTED_DATA;
  if (len < 6 + 3 * d->nc) return MLCC_ERR_BAD_DATA;
  d->hmax = d->vmax = 1;
  for (int i = 0; i < d->nc; ++i) {
    mlcc_jcomp *c = &d->c[i];
    c->id = f[6 + 3 * i], c->h = f[7 + 3 * i] >> 4, c->v = f[7 + 3 * i] & 15, c->tq = f[8 + 3 * i];
    if (c->h < 1 || c->h > 4 || c->v < 1 || c->v > 4 || c->tq > 3) return MLCC_ERR_BAD_DATA;
    if (c->h > d->hmax) d->hmax = c->h;
    if (c->v > d->vmax) d->vmax = c->v;
  }
  if (d->nc == 1) d->c[0].h = d->c[0].v = d->hmax = d->vmax = 1; /* one component: no subsampling */
  d->mcux = (d->w + 8 * d->hmax - 1) / (8 * d->hmax), d->mcuy = (d->h + 8 * d->vmax - 1) / (8 * d->vmax);
  for (int i = 0; i < d->nc; ++i) {
    mlcc_jcomp *c = &d->c[i];
    if (d->hmax % c->h || d->vmax % c->v) return MLCC_ERR_BAD_DATA;
    c->bw = d->mcux * c->h, c->bh = d->mcuy * c->v;
    c->w = (d->w * c->h + d->hmax - 1) / d->hmax, c->h_px = (d->h * c->v + d->vmax - 1) / d->vmax;
  }
  return MLCC_OK;
}

static int mlcc_jpeg(mlcc_img *img, const uint8_t *s, int64_t n) {
  mlcc_jpeg_dec *d = calloc(1, sizeof *d);
  if (!d) return MLCC_ERR_OUT_OF_MEMORY;
  d->s = s, d->n = n;
  int st = MLCC_ERR_BAD_DATA, framed = 0, scanned = 0, scans = 0;
  int64_t at = 2;
  while (at + 4 <= n) {
    if (s[at] != 0xff) break;
    int m = s[at + 1];
    if (m == 0xff) { /* fill byte */
      ++at;
      continue;
    }
    if (m == 0xd9) break; /* EOI */
    int len = (int)mlcc_be16(s + at + 2);
    if (len < 2 || len > n - at - 2) break;
    const uint8_t *b = s + at + 4;
    int blen = len - 2, bad = 0;
    at += 2 + len;
    if (m == 0xdb) { /* DQT */
      for (int i = 0; i < blen && !bad;) {
        int pq = b[i] >> 4, tq = b[i] & 15, size = pq ? 128 : 64;
        if (tq > 3 || pq > 1 || i + 1 + size > blen) bad = 1;
        for (int k = 0; k < 64 && !bad; ++k) d->q[tq][k] = (uint16_t)(pq ? mlcc_be16(b + i + 1 + 2 * k) : b[i + 1 + k]);
        i += 1 + size;
      }
    } else if (m == 0xc4) { /* DHT */
      for (int i = 0; i < blen && !bad;) {
        int tc = b[i] >> 4, th = b[i] & 15, total = 0;
        if (tc > 1 || th > 3 || i + 17 > blen) {
          bad = 1;
          break;
        }
        mlcc_jhuff *t = tc ? &d->ac[th] : &d->dc[th];
        t->bits[0] = 0;
        for (int k = 1; k <= 16; ++k) total += t->bits[k] = b[i + k];
        if (total > 256 || i + 17 + total > blen) {
          bad = 1;
          break;
        }
        memcpy(t->values, b + i + 17, (size_t)total);
        bad = mlcc_jhuff_build(t);
        i += 17 + total;
      }
    } else if (m == 0xc0 || m == 0xc1 || m == 0xc2) { /* SOF0/SOF1/SOF2: sequential or progressive Huffman */
      d->progressive = m == 0xc2;
      if ((st = framed ? MLCC_ERR_BAD_DATA : mlcc_jpeg_frame(d, b, blen)) != MLCC_OK ||
          (st = mlcc_img_begin(img, d->w, d->h)) != MLCC_OK)
        break;
      st = MLCC_ERR_BAD_DATA;
      framed = 1;
      for (int i = 0; i < d->nc; ++i) {
        mlcc_jcomp *c = &d->c[i];
        c->plane = calloc((size_t)(c->bw * 8), (size_t)(c->bh * 8));
        c->coef = calloc((size_t)(c->bw * c->bh), 64 * sizeof(int16_t));
        if (!c->plane || !c->coef) {
          st = MLCC_ERR_OUT_OF_MEMORY;
          bad = 1;
        }
      }
    } else if (m >= 0xc3 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
      st = MLCC_ERR_UNSUPPORTED_DATA; /* lossless, hierarchical, arithmetic-coded: not read */
      break;
    } else if (m == 0xdd) { /* DRI */
      if (blen < 2) bad = 1;
      else d->restart = (int)mlcc_be16(b);
    } else if (m == 0xee) { /* Adobe: its transform says how the colour components are coded */
      if (blen >= 12 && !memcmp(b, "Adobe", 5)) d->adobe = 1, d->adobe_transform = b[11];
    } else if (m == 0xe0) { /* JFIF: YCbCr, whatever else is said */
      if (blen >= 5 && !memcmp(b, "JFIF", 5)) d->jfif = 1;
    } else if (m == 0xda) { /* SOS: entropy-coded data follows the header */
      d->at = at;
      /* sequential: a scan per component at most; progressive: any number up to a bound on the work */
      if (!framed || ++scans > (d->progressive ? 256 : d->nc) || mlcc_jscan(d, b, blen)) {
        bad = 1;
      } else {
        scanned = 1;
        at = d->at; /* the next marker: find it past the entropy-coded bytes */
        while (at + 1 < n && !(s[at] == 0xff && s[at + 1] != 0 && !(s[at + 1] >= 0xd0 && s[at + 1] <= 0xd7))) ++at;
      }
    }
    if (bad) break;
  }
  if (scanned && st != MLCC_ERR_OUT_OF_MEMORY) {
    mlcc_jplanes(d);
    /* Y, Cb, Cr (, K) of one row, each w + 1 bytes: doubling an odd width's ceil(w / 2) samples gives w + 1 */
    uint8_t *rows = malloc((size_t)(d->w + 1) * 4);
    if (!rows) {
      st = MLCC_ERR_OUT_OF_MEMORY;
    } else {
      uint8_t *cb = rows + d->w + 1, *cr = cb + d->w + 1, *k4 = cr + d->w + 1, *rgb = malloc((size_t)d->w * 3);
      /* libjpeg's colour space: three components are YCbCr with a JFIF marker, else RGB where an Adobe
         marker says transform 0 or (without either marker) the component ids are 'R', 'G', 'B'; four are YCCK
         where an Adobe marker gives a transform other than 0 (converted to CMYK), else CMYK. Pillow then
         inverts CMYK, marker or not ("assume adobe conventions"). */
      int rgb_ids = d->c[0].id == 'R' && d->c[1].id == 'G' && d->c[2].id == 'B';
      int ycc = d->nc == 3 ? d->jfif || (d->adobe ? d->adobe_transform != 0 : !rgb_ids)
                           : d->adobe && d->adobe_transform != 0;
      st = rgb ? MLCC_OK : MLCC_ERR_OUT_OF_MEMORY;
      for (int64_t y = 0; y < d->h && st == MLCC_OK; ++y) {
        mlcc_jupsample(d, &d->c[0], y, rows);
        if (d->nc == 1) {
          for (int64_t x = 0; x < d->w; ++x) rgb[3 * x] = rgb[3 * x + 1] = rgb[3 * x + 2] = rows[x];
        } else {
          mlcc_jupsample(d, &d->c[1], y, cb);
          mlcc_jupsample(d, &d->c[2], y, cr);
          if (d->nc == 4) mlcc_jupsample(d, &d->c[3], y, k4);
          for (int64_t x = 0; x < d->w && !ycc; ++x)
            rgb[3 * x] = rows[x], rgb[3 * x + 1] = cb[x], rgb[3 * x + 2] = cr[x];
          for (int64_t x = 0; x < d->w && ycc; ++x) {
            /* jdcolor.c: FIX(1.40200) = 91881, FIX(1.77200) = 116130, FIX(0.71414) = 46802, FIX(0.34414) =
               22554, in 16-bit fixed point, rounded */
            int Y = rows[x], u = cb[x] - 128, v = cr[x] - 128;
            int r = Y + ((91881 * v + 32768) >> 16);
            int g = Y + ((-46802 * v - 22554 * u + 32768) >> 16);
            int b = Y + ((116130 * u + 32768) >> 16);
            rgb[3 * x] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
            rgb[3 * x + 1] = (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
            rgb[3 * x + 2] = (uint8_t)(b < 0 ? 0 : b > 255 ? 255 : b);
            if (d->nc == 4) /* YCCK: libjpeg's C, M, Y are 255 minus these */
              for (int c = 0; c < 3; ++c) rgb[3 * x + c] = (uint8_t)(255 - rgb[3 * x + c]);
          }
          for (int64_t x = 0; x < d->w && d->nc == 4; ++x) { /* inverted CMYK to RGB as Pillow's cmyk2rgb */
            int nk = k4[x]; /* 255 - (255 - k) */
            for (int c = 0; c < 3; ++c) {
              int v = 255 - rgb[3 * x + c], t = v * nk + 128;
              int o = nk - (((t >> 8) + t) >> 8);
              rgb[3 * x + c] = (uint8_t)(o < 0 ? 0 : o > 255 ? 255 : o);
            }
          }
        }
        mlcc_img_row(img, y, rgb);
      }
      free(rgb);
      free(rows);
    }
  }
  for (int i = 0; i < d->nc && i < 4; ++i) free(d->c[i].plane), free(d->c[i].coef);
  free(d);
  return st;
}

#endif
