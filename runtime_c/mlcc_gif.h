/* mlcc_gif.h: GIF for mlcc_image.h: the first frame, as Pillow gives it (the ONNX reference).
 *
 * The image is the logical screen (grown to the frame if the frame reaches past it), filled with the colour of
 * the frame's transparent index (or index 0 where it has none), with the frame's pixels drawn at its offset;
 * colours from the local colour table, else the global one; indices past the table are black, and without any
 * table an index is its own gray level. LZW codes of up to 12 bits; interlaced or not. Later frames are not
 * read (an animation gives its first frame). */
#ifndef MLCC_GIF_H
#define MLCC_GIF_H

/* Skips data sub-blocks from s[*at]; nonzero if the stream ends first. */
static int mlcc_gif_skip(const uint8_t *s, int64_t n, int64_t *at) {
  while (*at < n) {
    int len = s[(*at)++];
    if (!len) return 0;
    *at += len;
  }
  return 1;
}

/* Decodes the LZW data (sub-blocks from s[*at]) of a w x h frame into idx, rows in their coded order. */
static int mlcc_gif_lzw(const uint8_t *s, int64_t n, int64_t at, int min, uint8_t *idx, int64_t count) {
  uint16_t prefix[4096];
  uint8_t suffix[4096], first[4096], stack[4096];
  int clear = 1 << min, next = clear + 2, size = min + 1, prev = -1;
  uint32_t bits = 0;
  int nbits = 0, block = 0;
  int64_t out = 0;
  for (int i = 0; i < clear; ++i) prefix[i] = 0xffff, suffix[i] = first[i] = (uint8_t)i;
  while (out < count) {
    while (nbits < size) { /* the codes run on across sub-blocks, least significant bit first */
      if (block == 0) {
        if (at >= n || (block = s[at++]) == 0) return MLCC_ERR_BAD_DATA; /* data ended before the image */
      }
      if (at >= n) return MLCC_ERR_BAD_DATA;
      bits |= (uint32_t)s[at++] << nbits, nbits += 8, --block;
    }
    int code = (int)(bits & ((1u << size) - 1));
    bits >>= size, nbits -= size;
    if (code == clear) {
      next = clear + 2, size = min + 1, prev = -1;
      continue;
    }
    if (code == clear + 1) break; /* end of information */
    if (code > next || (code == next && prev < 0)) return MLCC_ERR_BAD_DATA;
    int c = code == next ? prev : code, depth = 0;
    if (code == next) stack[depth++] = first[prev]; /* the code being defined: prev's string and its first */
    for (; c != 0xffff && depth < 4096; c = prefix[c]) stack[depth++] = suffix[c];
    while (depth && out < count) idx[out++] = stack[--depth];
    if (prev >= 0 && next < 4096) {
      prefix[next] = (uint16_t)prev, suffix[next] = first[code == next ? prev : code], first[next] = first[prev];
      if (++next == 1 << size && size < 12) ++size;
    }
    prev = code;
  }
  return out == count ? MLCC_OK : MLCC_ERR_BAD_DATA;
}

static int mlcc_gif(mlcc_img *img, const uint8_t *s, int64_t n) {
  if (n < 13) return MLCC_ERR_BAD_DATA;
  int64_t sw = mlcc_le16(s + 6), sh = mlcc_le16(s + 8), at = 13;
  const uint8_t *global = NULL, *local = NULL;
  int gsize = 0, lsize = 0, transparent = -1;
  if (s[10] & 0x80) {
    gsize = 2 << (s[10] & 7), global = s + at, at += 3 * gsize;
    if (at > n) return MLCC_ERR_BAD_DATA;
  }
  for (;;) { /* extensions, up to the first image descriptor */
    if (at >= n) return MLCC_ERR_BAD_DATA;
    int kind = s[at++];
    if (kind == ',') break;
    if (kind != '!' || at >= n) return MLCC_ERR_BAD_DATA; /* the trailer, or garbage, before any image */
    int label = s[at++];
    if (label == 0xf9 && at + 5 <= n && s[at] >= 4 && (s[at + 1] & 1)) transparent = s[at + 4];
    if (mlcc_gif_skip(s, n, &at)) return MLCC_ERR_BAD_DATA;
  }
  if (at + 10 > n) return MLCC_ERR_BAD_DATA;
  int64_t fx = mlcc_le16(s + at), fy = mlcc_le16(s + at + 2), fw = mlcc_le16(s + at + 4), fh = mlcc_le16(s + at + 6);
  int flags = s[at + 8], min;
  at += 9;
  if (flags & 0x80) {
    lsize = 2 << (flags & 7), local = s + at, at += 3 * lsize;
    if (at > n) return MLCC_ERR_BAD_DATA;
  }
  if (at >= n || (min = s[at++]) < 1 || min > 11) return MLCC_ERR_BAD_DATA;
  int64_t w = fx + fw > sw ? fx + fw : sw, h = fy + fh > sh ? fy + fh : sh;
  int st = mlcc_img_begin(img, w, h);
  if (st != MLCC_OK) return st;
  const uint8_t *pal = local ? local : global;
  int psize = local ? lsize : gsize;
  int64_t area = fw * fh;
  uint8_t *idx = malloc((size_t)(area > 0 ? area : 1)), *rgb = malloc((size_t)(3 * w));
  uint8_t *canvas = malloc((size_t)(w * h));
  if (!idx || !rgb || !canvas) st = MLCC_ERR_OUT_OF_MEMORY;
  if (st == MLCC_OK && area > 0) st = mlcc_gif_lzw(s, n, at, min, idx, area);
  if (st == MLCC_OK) {
    memset(canvas, transparent >= 0 ? transparent : 0, (size_t)(w * h));
    for (int64_t r = 0; r < fh; ++r) { /* interlaced: rows 0, 8, ...; 4, 12, ...; 2, 6, ...; 1, 3, ... */
      int64_t y = r;
      if (flags & 0x40) {
        int64_t p1 = (fh + 7) / 8, p2 = (fh + 3) / 8, p3 = (fh + 1) / 4;
        y = r < p1             ? 8 * r
            : r < p1 + p2      ? 8 * (r - p1) + 4
            : r < p1 + p2 + p3 ? 4 * (r - p1 - p2) + 2
                               : 2 * (r - p1 - p2 - p3) + 1;
      }
      memcpy(canvas + (fy + y) * w + fx, idx + r * fw, (size_t)fw);
    }
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        int i = canvas[y * w + x];
        for (int k = 0; k < 3; ++k) rgb[3 * x + k] = pal ? (i < psize ? pal[3 * i + k] : 0) : (uint8_t)i;
      }
      mlcc_img_row(img, y, rgb);
    }
  }
  free(idx), free(rgb), free(canvas);
  return st;
}

#endif
