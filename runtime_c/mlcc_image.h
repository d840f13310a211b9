/* mlcc_image.h: the image decoders behind ImageDecoder (compiler/ops/image.py), included by a model that has one.
 *
 * mlcc_image_decode reads an encoded image (BMP, PNM, TIFF, PNG, JPEG, WebP, JPEG 2000 or GIF, told apart by their
 * first bytes) and writes it as rows of RGB, BGR or grayscale bytes, matching what Pillow's Image.open gives (the
 * ONNX reference): JPEG with libjpeg's integer inverse DCT, its "fancy" chroma upsampling and its YCbCr
 * tables; grayscale from RGB with Pillow's weights (L = R 299/1000 + G 587/1000 + B 114/1000 in 16-bit
 * fixed point). Palette, gray and 16-bit images become 8-bit RGB first; alpha is dropped.
 *
 * The input is untrusted: every read is bounds-checked and sizes are checked against the output bound before
 * any allocation. A stream in a format or variant the decoders do not read (JPEG 2000 with coding
 * options, arithmetic-coded JPEG, TIFF compressed other than with PackBits, LZW or Deflate, ...) returns
 * MLCC_ERR_UNSUPPORTED_DATA, an image larger than the bound MLCC_ERR_OVER_BOUND, a corrupt one MLCC_ERR_BAD_DATA.
 * Work buffers come from malloc and are freed before returning (MLCC_ERR_OUT_OF_MEMORY if one cannot be had). */
#ifndef MLCC_IMAGE_H
#define MLCC_IMAGE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlcc_runtime.h"

enum { MLCC_IMAGE_RGB = 0, MLCC_IMAGE_BGR = 1, MLCC_IMAGE_GRAY = 2 };

/* Where decoded rows go: the output tensor, at most hmax x wmax pixels of `channels` bytes. */
typedef struct {
  uint8_t *out;
  int64_t hmax, wmax;
  int mode;
  int64_t h, w; /* set by mlcc_img_begin */
} mlcc_img;

static int mlcc_img_begin(mlcc_img *img, int64_t w, int64_t h) {
  if (w < 1 || h < 1) return MLCC_ERR_BAD_DATA;
  if (w > img->wmax || h > img->hmax) return MLCC_ERR_OVER_BOUND;
  img->w = w;
  img->h = h;
  return MLCC_OK;
}

/* Row y of the image from w RGB pixels. */
static void mlcc_img_row(mlcc_img *img, int64_t y, const uint8_t *rgb) {
  int64_t w = img->w;
  if (img->mode == MLCC_IMAGE_GRAY) {
    uint8_t *o = img->out + y * w;
    for (int64_t x = 0; x < w; ++x) {
      const uint8_t *p = rgb + 3 * x;
      o[x] = (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
    }
  } else {
    uint8_t *o = img->out + y * w * 3;
    int r = img->mode == MLCC_IMAGE_BGR ? 2 : 0;
    for (int64_t x = 0; x < w; ++x) {
      o[3 * x + r] = rgb[3 * x];
      o[3 * x + 1] = rgb[3 * x + 1];
      o[3 * x + 2 - r] = rgb[3 * x + 2];
    }
  }
}

static uint32_t mlcc_le16(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8; }
static uint32_t mlcc_le32(const uint8_t *p) { return mlcc_le16(p) | mlcc_le16(p + 2) << 16; }
static uint32_t mlcc_be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t mlcc_be32(const uint8_t *p) { return mlcc_be16(p) << 16 | mlcc_be16(p + 2); }

/* ---- BMP: 1, 4, 8 (palette; uncompressed, RLE8 or RLE4), 16, 24 and 32 bits per pixel (bit fields in the
 * layouts Pillow reads), bottom-up or top-down ---- */

/* Decodes RLE8 / RLE4 data at s[at .. n) into w x h palette indices (rows in stored order), as Pillow's
 * BmpRleDecoder: unset pixels are 0, an end of line pads its row, a delta skips; all pixels must be given. */
static int mlcc_bmp_rle(const uint8_t *s, int64_t n, int64_t at, int rle4, int64_t w, int64_t h, uint8_t *idx) {
  int64_t total = w * h, len = 0, x = 0;
  memset(idx, 0, (size_t)total);
  while (len < total && at + 2 <= n) {
    int count = s[at], byte = s[at + 1];
    at += 2;
    if (count) { /* a run of one byte (RLE4: two alternating nibbles) */
      if (x + count > w) count = (int)(w - x > 0 ? w - x : 0);
      for (int i = 0; i < count && len < total; ++i)
        idx[len++] = (uint8_t)(rle4 ? (i & 1 ? byte & 15 : byte >> 4) : byte);
      x += count;
    } else if (byte == 0) { /* end of line */
      while (len % w) ++len;
      x = 0;
    } else if (byte == 1) { /* end of bitmap */
      break;
    } else if (byte == 2) { /* delta: right, up */
      if (at + 2 > n) break;
      int64_t skip = s[at] + s[at + 1] * w;
      at += 2;
      len += skip < total - len ? skip : total - len;
      x = len % w;
    } else { /* absolute: `byte` literal pixels, padded to a 16-bit boundary of the file */
      int64_t count2 = byte < total - len ? byte : total - len, bytes = rle4 ? (count2 + 1) / 2 : count2;
      int64_t got = bytes < n - at ? bytes : n - at;
      for (int64_t i = 0; i < got; ++i) {
        if (rle4) {
          idx[len++] = (uint8_t)(s[at + i] >> 4);
          if (2 * i + 1 < count2) idx[len++] = (uint8_t)(s[at + i] & 15);
        } else {
          idx[len++] = s[at + i];
        }
      }
      at += got;
      if (got < bytes || len == total) break;
      x += byte;
      at += at & 1;
    }
  }
  return len == total ? MLCC_OK : MLCC_ERR_BAD_DATA; /* Pillow: "not enough image data" */
}

static int mlcc_bmp(mlcc_img *img, const uint8_t *s, int64_t n) {
  if (n < 26) return MLCC_ERR_BAD_DATA;
  uint32_t offset = mlcc_le32(s + 10), dib = mlcc_le32(s + 14);
  int64_t w, h;
  uint32_t bpp, compression = 0, colors = 0, entry = 4, mask[4] = {0, 0, 0, 0};
  if (dib == 12) { /* OS/2 core header */
    w = mlcc_le16(s + 18);
    h = mlcc_le16(s + 20);
    bpp = mlcc_le16(s + 24);
    entry = 3;
  } else if (dib >= 40 && n >= 54) {
    w = (int32_t)mlcc_le32(s + 18);
    h = (int32_t)mlcc_le32(s + 22);
    bpp = mlcc_le16(s + 28);
    compression = mlcc_le32(s + 30);
    colors = mlcc_le32(s + 46);
  } else {
    return MLCC_ERR_BAD_DATA;
  }
  int top_down = h < 0;
  if (top_down) h = -h;
  /* byte order of a direct-colour pixel: R, G, B at these byte offsets (16-bit: 5-6-5 or 5-5-5 fields) */
  int r_at = 2, g_at = 1, b_at = 0, r565 = 0;
  if (compression == 3) { /* bit fields: the masks follow a 40-byte header, or are in a longer one */
    int nmask = dib >= 56 ? 4 : 3; /* alpha's mask only in a header that holds it */
    if (n < 54 + 4 * nmask) return MLCC_ERR_BAD_DATA;
    for (int i = 0; i < nmask; ++i) mask[i] = mlcc_le32(s + 54 + 4 * i);
    static const uint32_t layouts32[8][7] = { /* masks, then where R, G, B are */
        {0xff0000, 0xff00, 0xff, 0, 2, 1, 0},     {0xff000000, 0xff0000, 0xff00, 0, 3, 2, 1},
        {0xff000000, 0xff00, 0xff, 0, 3, 1, 0},   {0xff000000, 0xff0000, 0xff00, 0xff, 3, 2, 1},
        {0xff, 0xff00, 0xff0000, 0xff000000, 0, 1, 2}, {0xff0000, 0xff00, 0xff, 0xff000000, 2, 1, 0},
        {0xff000000, 0xff00, 0xff, 0xff0000, 3, 1, 0}, {0, 0, 0, 0, 2, 1, 0}};
    int found = 0;
    if (bpp == 32) {
      for (int k = 0; k < 8 && !found; ++k)
        if (!memcmp(mask, layouts32[k], sizeof mask))
          found = 1, r_at = (int)layouts32[k][4], g_at = (int)layouts32[k][5], b_at = (int)layouts32[k][6];
    } else if (bpp == 24) {
      found = mask[0] == 0xff0000 && mask[1] == 0xff00 && mask[2] == 0xff;
    } else if (bpp == 16) {
      found = (r565 = mask[0] == 0xf800 && mask[1] == 0x7e0 && mask[2] == 0x1f) ||
              (mask[0] == 0x7c00 && mask[1] == 0x3e0 && mask[2] == 0x1f);
    }
    if (!found) return MLCC_ERR_UNSUPPORTED_DATA; /* a layout Pillow does not read either */
  } else if (compression == 1 || compression == 2) {
    if (bpp != (compression == 1 ? 8u : 4u)) return MLCC_ERR_BAD_DATA;
  } else if (compression != 0) {
    return MLCC_ERR_UNSUPPORTED_DATA; /* JPEG or PNG inside */
  }
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) return MLCC_ERR_UNSUPPORTED_DATA;
  int st = mlcc_img_begin(img, w, h);
  if (st != MLCC_OK) return st;
  uint8_t palette[256][3];
  memset(palette, 0, sizeof palette);
  if (bpp <= 8) {
    uint32_t count = colors ? colors : 1u << bpp, at = 14 + dib;
    if (count > 256) return MLCC_ERR_BAD_DATA;
    if ((int64_t)at + (int64_t)count * entry > n) return MLCC_ERR_BAD_DATA;
    for (uint32_t i = 0; i < count; ++i) {
      const uint8_t *e = s + at + i * entry;
      palette[i][0] = e[2];
      palette[i][1] = e[1];
      palette[i][2] = e[0];
    }
  }
  int64_t stride = (w * bpp + 31) / 32 * 4;
  uint8_t *rle = NULL;
  if (offset > n) return MLCC_ERR_BAD_DATA;
  if (compression == 1 || compression == 2) {
    if (!(rle = malloc((size_t)(w * h)))) return MLCC_ERR_OUT_OF_MEMORY;
    if ((st = mlcc_bmp_rle(s, n, offset, compression == 2, w, h, rle)) != MLCC_OK) {
      free(rle);
      return st;
    }
  } else if (stride * h > n - offset) {
    return MLCC_ERR_BAD_DATA;
  }
  uint8_t *rgb = malloc((size_t)w * 3);
  if (!rgb) {
    free(rle);
    return MLCC_ERR_OUT_OF_MEMORY;
  }
  for (int64_t y = 0; y < h; ++y) {
    int64_t stored = top_down ? y : h - 1 - y;
    const uint8_t *row = s + offset + stride * stored;
    for (int64_t x = 0; x < w; ++x) {
      uint8_t *o = rgb + 3 * x;
      if (rle) {
        memcpy(o, palette[rle[stored * w + x]], 3);
      } else if (bpp == 16) { /* Pillow's BGR;16 and BGR;15: each field scaled by 255 / its maximum */
        unsigned v = row[2 * x] | (unsigned)row[2 * x + 1] << 8;
        o[0] = (uint8_t)((r565 ? v >> 11 & 31 : v >> 10 & 31) * 255 / 31);
        o[1] = (uint8_t)(r565 ? (v >> 5 & 63) * 255 / 63 : (v >> 5 & 31) * 255 / 31);
        o[2] = (uint8_t)((v & 31) * 255 / 31);
      } else if (bpp >= 24) {
        const uint8_t *p = row + x * (bpp / 8);
        o[0] = p[r_at], o[1] = p[g_at], o[2] = p[b_at];
      } else {
        int64_t bit = x * bpp;
        unsigned v = (row[bit >> 3] >> (8 - bpp - (bit & 7))) & ((1u << bpp) - 1);
        memcpy(o, palette[v], 3);
      }
    }
    mlcc_img_row(img, y, rgb);
  }
  free(rgb), free(rle);
  return MLCC_OK;
}

/* ---- PNM: P1 to P6 (bitmap, graymap, pixmap; plain or raw), any maxval up to 65535 ---- */

/* The next header number (whitespace and # comments skipped), or -1. */
static int64_t mlcc_pnm_number(const uint8_t *s, int64_t n, int64_t *at) {
  int64_t i = *at;
  for (;;) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f')) ++i;
    if (i < n && s[i] == '#') {
      while (i < n && s[i] != '\n' && s[i] != '\r') ++i;
      continue;
    }
    break;
  }
  if (i >= n || s[i] < '0' || s[i] > '9') return -1;
  int64_t v = 0;
  while (i < n && s[i] >= '0' && s[i] <= '9') {
    v = v * 10 + (s[i++] - '0');
    if (v > (1 << 30)) return -1;
  }
  *at = i;
  return v;
}

static int mlcc_pnm(mlcc_img *img, const uint8_t *s, int64_t n) {
  int kind = s[1] - '0', plain = kind <= 3, bitmap = kind == 1 || kind == 4, color = kind == 3 || kind == 6;
  int64_t at = 2, w = mlcc_pnm_number(s, n, &at), h = mlcc_pnm_number(s, n, &at);
  int64_t maxval = bitmap ? 1 : mlcc_pnm_number(s, n, &at);
  if (w < 0 || h < 0 || maxval < 1 || maxval > 65535) return MLCC_ERR_BAD_DATA;
  int st = mlcc_img_begin(img, w, h), wide = maxval > 255; /* wide: 2-byte samples, most significant first */
  if (st != MLCC_OK) return st;
  if (!plain) {
    if (at >= n) return MLCC_ERR_BAD_DATA;
    ++at; /* the single whitespace byte before the raster */
    int64_t stride = bitmap ? (w + 7) / 8 : w * (color ? 3 : 1) << wide;
    if (stride * h > n - at) return MLCC_ERR_BAD_DATA;
  }
  uint8_t *rgb = malloc((size_t)w * 3);
  if (!rgb) return MLCC_ERR_OUT_OF_MEMORY;
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      int64_t v[3];
      for (int c = 0; c < (color ? 3 : 1); ++c) {
        if (plain && kind == 1) { /* bitmap digits may run together */
          while (at < n && s[at] != '0' && s[at] != '1') {
            if (s[at] == '#')
              while (at < n && s[at] != '\n') ++at;
            else
              ++at;
          }
          v[c] = at < n ? s[at++] - '0' : -1;
        } else if (plain) {
          v[c] = mlcc_pnm_number(s, n, &at);
        } else if (bitmap) {
          v[c] = (s[at + y * ((w + 7) / 8) + x / 8] >> (7 - x % 8)) & 1;
        } else {
          int64_t i = ((y * w + x) * (color ? 3 : 1) + c) << wide;
          v[c] = wide ? (int64_t)mlcc_be16(s + at + i) : s[at + i];
        }
        if (v[c] < 0 || v[c] > maxval) {
          free(rgb);
          return MLCC_ERR_BAD_DATA;
        }
        if (bitmap) {
          v[c] = v[c] ? 0 : 255; /* a set PBM bit is black */
        } else if (maxval != 255) { /* v * 255 / maxval rounded half to even, as Pillow */
          int64_t q = v[c] * 255 / maxval, r2 = 2 * (v[c] * 255 % maxval);
          v[c] = q + (r2 > maxval || (r2 == maxval && (q & 1)));
        }
      }
      for (int c = 0; c < 3; ++c) rgb[3 * x + c] = (uint8_t)v[color ? c : 0];
    }
    mlcc_img_row(img, y, rgb);
  }
  free(rgb);
  return MLCC_OK;
}

/* ---- TIFF: the first image, 8-bit samples (gray, RGB, RGBA, palette) or bilevel, uncompressed, PackBits,
   LZW or Deflate (with or without horizontal differencing), in strips or tiles, chunky or planar ---- */

static int64_t mlcc_zlib(const uint8_t *s, int64_t n, uint8_t *out, int64_t size);

/* TIFF's LZW (MSB-first codes of 9 to 12 bits, widened one code early) into out[0 .. need); the bytes written. */
static int64_t mlcc_tiff_lzw(const uint8_t *s, int64_t n, uint8_t *out, int64_t need) {
  static const int CLEAR = 256, END = 257;
  int16_t prefix[4096];
  uint8_t last[4096], first[4096];
  uint16_t length[4096];
  for (int i = 0; i < 256; ++i) prefix[i] = -1, last[i] = first[i] = (uint8_t)i, length[i] = 1;
  int next = 258, width = 9, prev = -1;
  int64_t bit = 0, o = 0;
  while (o < need && bit + width <= 8 * n) {
    int64_t byte = bit >> 3; /* the code lies within the 3 bytes from here (12 bits at most, any offset) */
    uint32_t window = (uint32_t)s[byte] << 16 | (byte + 1 < n ? (uint32_t)s[byte + 1] << 8 : 0) |
                      (byte + 2 < n ? s[byte + 2] : 0);
    int code = (int)((window >> (24 - (bit & 7) - width)) & ((1u << width) - 1));
    bit += width;
    if (code == CLEAR) {
      next = 258, width = 9, prev = -1;
      continue;
    }
    if (code == END) break;
    if (code > next || (code == next && prev < 0) || (prev < 0 && code > 255)) return -1;
    if (prev >= 0 && next < 4096) { /* the new entry: prev's string and the first byte of this one */
      prefix[next] = (int16_t)prev;
      last[next] = code == next ? first[prev] : first[code];
      first[next] = first[prev];
      length[next] = (uint16_t)(length[prev] + 1);
      ++next;
      if (next == (1 << width) - 1 && width < 12) ++width;
    }
    int len = length[code];
    if (len > need - o) return -1;
    for (int c = code, i = len - 1; i >= 0; c = prefix[c], --i) out[o + i] = last[c];
    o += len;
    prev = code;
  }
  return o;
}

typedef struct {
  const uint8_t *s;
  int64_t n;
  int big;
} mlcc_tiff;

static uint32_t mlcc_tiff16(const mlcc_tiff *t, int64_t at) { return t->big ? mlcc_be16(t->s + at) : mlcc_le16(t->s + at); }
static uint32_t mlcc_tiff32(const mlcc_tiff *t, int64_t at) { return t->big ? mlcc_be32(t->s + at) : mlcc_le32(t->s + at); }

/* Value `i` of an IFD entry (type SHORT or LONG), or -1 where it is out of the stream. */
static int64_t mlcc_tiff_value(const mlcc_tiff *t, int64_t entry, uint32_t i) {
  uint32_t type = mlcc_tiff16(t, entry + 2), count = mlcc_tiff32(t, entry + 4);
  uint32_t size = type == 3 ? 2 : type == 4 ? 4 : 0;
  if (!size || i >= count) return -1;
  int64_t at = (int64_t)count * size <= 4 ? entry + 8 : mlcc_tiff32(t, entry + 8);
  at += (int64_t)i * size;
  if (at < 0 || at + size > t->n) return -1;
  return size == 2 ? mlcc_tiff16(t, at) : mlcc_tiff32(t, at);
}

/* One strip or tile's bytes s[at .. at + size) decompressed into out[0 .. need). */
static int mlcc_tiff_segment(const uint8_t *s, int64_t at, int64_t size, int64_t compression, uint8_t *out,
                             int64_t need) {
  if (compression == 1) {
    if (size < need) return MLCC_ERR_BAD_DATA;
    memcpy(out, s + at, (size_t)need);
  } else if (compression == 32773) { /* PackBits */
    int64_t i = at, o = 0, end = at + size;
    while (o < need && i < end) {
      int c = (int8_t)s[i++];
      if (c >= 0) {
        if (c + 1 > end - i || c + 1 > need - o) break;
        memcpy(out + o, s + i, (size_t)c + 1), i += c + 1, o += c + 1;
      } else if (c != -128) {
        if (i >= end || 1 - c > need - o) break;
        memset(out + o, s[i++], (size_t)(1 - c)), o += 1 - c;
      }
    }
    if (o < need) return MLCC_ERR_BAD_DATA;
  } else if (compression == 5) {
    if (mlcc_tiff_lzw(s + at, size, out, need) != need) return MLCC_ERR_BAD_DATA;
  } else if (mlcc_zlib(s + at, size, out, need) != need) { /* Deflate */
    return MLCC_ERR_BAD_DATA;
  }
  return MLCC_OK;
}

/* TIFF (the first image): 8-bit gray, RGB, RGBA and palette, and bilevel; in strips or tiles, samples
 * interleaved or in separate planes. */
static int mlcc_tiff_decode(mlcc_img *img, const uint8_t *s, int64_t n) {
  mlcc_tiff t = {s, n, s[0] == 'M'};
  int64_t ifd = mlcc_tiff32(&t, 4);
  if (ifd < 8 || ifd + 2 > n) return MLCC_ERR_BAD_DATA;
  uint32_t entries = mlcc_tiff16(&t, ifd);
  if (ifd + 2 + 12 * (int64_t)entries > n) return MLCC_ERR_BAD_DATA;
  int64_t w = -1, h = -1, bits = 1, compression = 1, photometric = -1, spp = 1, rows_per_strip = -1, planar = 1;
  int64_t offsets = 0, counts = 0, colormap = 0, predictor = 1, tw = 0, th = 0;
  for (uint32_t e = 0; e < entries; ++e) {
    int64_t at = ifd + 2 + 12 * (int64_t)e;
    switch (mlcc_tiff16(&t, at)) {
      case 256: w = mlcc_tiff_value(&t, at, 0); break;
      case 257: h = mlcc_tiff_value(&t, at, 0); break;
      case 258: bits = mlcc_tiff_value(&t, at, 0); break;
      case 259: compression = mlcc_tiff_value(&t, at, 0); break;
      case 262: photometric = mlcc_tiff_value(&t, at, 0); break;
      case 273: case 324: offsets = at; break; /* strip or tile offsets */
      case 277: spp = mlcc_tiff_value(&t, at, 0); break;
      case 278: rows_per_strip = mlcc_tiff_value(&t, at, 0); break;
      case 279: case 325: counts = at; break;
      case 284: planar = mlcc_tiff_value(&t, at, 0); break;
      case 317: predictor = mlcc_tiff_value(&t, at, 0); break;
      case 320: colormap = at; break;
      case 322: tw = mlcc_tiff_value(&t, at, 0); break;
      case 323: th = mlcc_tiff_value(&t, at, 0); break;
      default: break;
    }
  }
  int bilevel = bits == 1 && spp == 1 && (photometric == 0 || photometric == 1);
  int known = compression == 1 || compression == 32773 || compression == 5 || compression == 8 || compression == 32946;
  if (!offsets || !counts) return MLCC_ERR_BAD_DATA;
  if ((planar != 1 && planar != 2) || !known || (predictor != 1 && (predictor != 2 || bilevel)))
    return MLCC_ERR_UNSUPPORTED_DATA;
  if (!bilevel && (bits != 8 || !((photometric <= 1 && spp == 1) || (photometric == 2 && (spp == 3 || spp == 4)) ||
                                  (photometric == 3 && spp == 1 && colormap))))
    return MLCC_ERR_UNSUPPORTED_DATA; /* 16-bit or float samples, CMYK, YCbCr, CIELab, ... */
  int st = mlcc_img_begin(img, w, h);
  if (st != MLCC_OK) return st;
  int tiled = tw > 0 || th > 0;
  if (tiled && (tw < 1 || th < 1)) return MLCC_ERR_BAD_DATA;
  if (tiled && (tw > w + 1024 || th > h + 1024)) return MLCC_ERR_UNSUPPORTED_DATA; /* bounded work buffers */
  if (!tiled) { /* strips: tiles as wide as the image */
    if (rows_per_strip < 1 || rows_per_strip > h) rows_per_strip = h;
    tw = w, th = rows_per_strip;
  }
  int64_t planes = planar == 2 ? spp : 1, per = planar == 2 ? 1 : spp; /* samples per pixel in a segment */
  int64_t across = (w + tw - 1) / tw, down = (h + th - 1) / th;
  int64_t seg_stride = bilevel ? (tw + 7) / 8 : tw * per, seg_bytes = seg_stride * th;
  /* the image as w x h pixels of spp samples (bilevel: one byte 0 or 1 per pixel) */
  uint8_t *seg = malloc((size_t)seg_bytes), *pix = malloc((size_t)(w * h * (bilevel ? 1 : spp)));
  uint8_t *rgb = malloc((size_t)w * 3);
  if (!seg || !pix || !rgb) st = MLCC_ERR_OUT_OF_MEMORY;
  for (int64_t k = 0; k < planes * across * down && st == MLCC_OK; ++k) {
    int64_t plane = k / (across * down), tile = k % (across * down), x0 = tile % across * tw, y0 = tile / across * th;
    int64_t rows = tiled ? th : (h - y0 < th ? h - y0 : th); /* a last strip may be short, a tile never */
    int64_t at = mlcc_tiff_value(&t, offsets, (uint32_t)k), size = mlcc_tiff_value(&t, counts, (uint32_t)k);
    if (at < 0 || size < 0 || at > n || size > n - at) {
      st = MLCC_ERR_BAD_DATA;
      break;
    }
    if ((st = mlcc_tiff_segment(s, at, size, compression, seg, rows * seg_stride)) != MLCC_OK) break;
    for (int64_t r = 0; r < rows && y0 + r < h; ++r) {
      uint8_t *row = seg + r * seg_stride;
      if (predictor == 2) /* horizontal differencing: each sample was stored as its difference from the left one */
        for (int64_t i = per; i < tw * per; ++i) row[i] = (uint8_t)(row[i] + row[i - per]);
      for (int64_t x = 0; x < tw && x0 + x < w; ++x) {
        int64_t p = (y0 + r) * w + x0 + x;
        if (bilevel) pix[p] = (row[x / 8] >> (7 - x % 8)) & 1;
        else if (planar == 2) pix[p * spp + plane] = row[x];
        else memcpy(pix + p * spp, row + x * spp, (size_t)spp);
      }
    }
  }
  for (int64_t y = 0; y < h && st == MLCC_OK; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      uint8_t *o = rgb + 3 * x;
      const uint8_t *v = pix + (y * w + x) * (bilevel ? 1 : spp);
      if (bilevel) {
        o[0] = o[1] = o[2] = (uint8_t)((v[0] ^ (photometric == 0)) ? 255 : 0);
      } else if (photometric == 2) {
        o[0] = v[0], o[1] = v[1], o[2] = v[2];
      } else if (photometric == 3) { /* 16-bit colour map entries, all reds then greens then blues */
        for (int c = 0; c < 3; ++c) {
          int64_t m = mlcc_tiff_value(&t, colormap, (uint32_t)(c * 256 + v[0]));
          if (m < 0) st = MLCC_ERR_BAD_DATA;
          o[c] = (uint8_t)(m >> 8);
        }
      } else {
        o[0] = o[1] = o[2] = photometric == 0 ? (uint8_t)(255 - v[0]) : v[0];
      }
    }
    mlcc_img_row(img, y, rgb);
  }
  free(seg), free(pix), free(rgb);
  return st;
}

/* ---- inflate (RFC 1951) for PNG ---- */

typedef struct {
  const uint8_t *s;
  int64_t n, at; /* in bytes */
  uint32_t bits;
  int count;
  uint8_t *out;
  int64_t size, pos;
  int bad;
} mlcc_inflate;

typedef struct {
  uint16_t count[16];
  uint16_t symbol[320];
  uint16_t fast[512]; /* a code of up to 9 bits by the next 9 bits of the stream: length << 12 | symbol */
} mlcc_huff;

static uint32_t mlcc_inf_bits(mlcc_inflate *z, int need) {
  while (z->count < need) {
    if (z->at >= z->n) {
      z->bad = 1;
      return 0;
    }
    z->bits |= (uint32_t)z->s[z->at++] << z->count;
    z->count += 8;
  }
  uint32_t v = z->bits & ((1u << need) - 1);
  z->bits >>= need;
  z->count -= need;
  return v;
}

/* Of a canonical prefix code with count[len] codes of each length 1 to 15 (lengths[0 .. n) per symbol): the
 * symbols in code order into symbol[], and a table fast[1 << bits] that gives each code of at most `bits` bits,
 * by the stream's next `bits` bits, as length << 12 | symbol (0 where the code is longer). Codes enter the
 * stream first bit first (deflate, VP8L), so the table is indexed by the reversed codes. */
static void mlcc_huff_index(const uint16_t *count, const uint8_t *lengths, int n, uint16_t *symbol, uint16_t *fast,
                            int bits) {
  uint16_t offs[16];
  offs[1] = 0;
  for (int len = 1; len < 15; ++len) offs[len + 1] = (uint16_t)(offs[len] + count[len]);
  for (int i = 0; i < n; ++i)
    if (lengths[i]) symbol[offs[lengths[i]]++] = (uint16_t)i;
  memset(fast, 0, sizeof *fast << bits);
  for (int len = 1, code = 0, index = 0; len <= bits; ++len) {
    for (int i = 0; i < count[len]; ++i) {
      int c = code + i, rev = 0;
      for (int b = 0; b < len; ++b) rev |= ((c >> b) & 1) << (len - 1 - b);
      for (int j = rev; j < 1 << bits; j += 1 << len) fast[j] = (uint16_t)(len << 12 | symbol[index + i]);
    }
    index += count[len];
    code = (code + count[len]) << 1;
  }
}

/* Canonical codes from code lengths; nonzero where the lengths over-subscribe. */
static int mlcc_huff_build(mlcc_huff *hf, const uint8_t *lengths, int n) {
  memset(hf->count, 0, sizeof hf->count);
  for (int i = 0; i < n; ++i) hf->count[lengths[i]]++;
  hf->count[0] = 0;
  int left = 1;
  for (int len = 1; len < 16; ++len) {
    left = 2 * left - hf->count[len];
    if (left < 0) return 1;
  }
  mlcc_huff_index(hf->count, lengths, n, hf->symbol, hf->fast, 9);
  return 0;
}

/* The next symbol: by table where its code has at most 9 bits and they are all in the stream, else bit by
   bit through the canonical code. */
static int mlcc_huff_decode(mlcc_inflate *z, const mlcc_huff *hf) {
  while (z->count < 9 && z->at < z->n) {
    z->bits |= (uint32_t)z->s[z->at++] << z->count;
    z->count += 8;
  }
  uint16_t e = hf->fast[z->bits & 511];
  int fast = e >> 12;
  if (fast && fast <= z->count) {
    z->bits >>= fast;
    z->count -= fast;
    return e & 4095;
  }
  int code = 0, first = 0, index = 0;
  for (int len = 1; len < 16; ++len) {
    code |= (int)mlcc_inf_bits(z, 1);
    if (z->bad) return -1;
    int count = hf->count[len];
    if (code - count < first) return hf->symbol[index + (code - first)];
    index += count;
    first = (first + count) << 1;
    code <<= 1;
  }
  z->bad = 1;
  return -1;
}

static const uint16_t mlcc_len_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                           31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t mlcc_len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t mlcc_dist_base[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                            193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t mlcc_dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static int mlcc_inflate_codes(mlcc_inflate *z, const mlcc_huff *lit, const mlcc_huff *dist) {
  for (;;) {
    int sym = mlcc_huff_decode(z, lit);
    if (sym < 0) return 1;
    if (sym < 256) {
      if (z->pos >= z->size) return 1;
      z->out[z->pos++] = (uint8_t)sym;
    } else if (sym == 256) {
      return 0;
    } else {
      sym -= 257;
      if (sym >= 29) return 1;
      int64_t len = mlcc_len_base[sym] + mlcc_inf_bits(z, mlcc_len_extra[sym]);
      int d = mlcc_huff_decode(z, dist);
      if (d < 0 || d >= 30) return 1;
      int64_t back = mlcc_dist_base[d] + mlcc_inf_bits(z, mlcc_dist_extra[d]);
      if (z->bad || back > z->pos || len > z->size - z->pos) return 1;
      for (int64_t i = 0; i < len; ++i, ++z->pos) z->out[z->pos] = z->out[z->pos - back];
    }
  }
}

/* Inflate a zlib stream into out[0 .. size); the bytes written, or -1. */
static int64_t mlcc_zlib(const uint8_t *s, int64_t n, uint8_t *out, int64_t size) {
  if (n < 2 || (s[0] & 15) != 8 || (s[0] << 8 | s[1]) % 31 || (s[1] & 32)) return -1;
  mlcc_inflate z = {s, n, 2, 0, 0, out, size, 0, 0};
  mlcc_huff lit, dist;
  uint8_t lengths[320];
  int last;
  do {
    last = (int)mlcc_inf_bits(&z, 1);
    int type = (int)mlcc_inf_bits(&z, 2);
    if (z.bad) return -1;
    if (type == 0) { /* stored */
      z.at -= z.count / 8; /* whole bytes read ahead go back: the block starts at the next byte boundary */
      z.bits = 0, z.count = 0;
      if (z.at + 4 > n) return -1;
      uint32_t len = mlcc_le16(s + z.at), nlen = mlcc_le16(s + z.at + 2);
      z.at += 4;
      if ((len ^ 0xffff) != nlen || len > n - z.at || len > size - z.pos) return -1;
      memcpy(out + z.pos, s + z.at, len), z.pos += len, z.at += len;
      continue;
    }
    if (type == 1) { /* fixed codes */
      int i = 0;
      for (; i < 144; ++i) lengths[i] = 8;
      for (; i < 256; ++i) lengths[i] = 9;
      for (; i < 280; ++i) lengths[i] = 7;
      for (; i < 288; ++i) lengths[i] = 8;
      mlcc_huff_build(&lit, lengths, 288);
      for (i = 0; i < 30; ++i) lengths[i] = 5;
      mlcc_huff_build(&dist, lengths, 30);
    } else if (type == 2) { /* dynamic codes */
      static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
      int nlen = (int)mlcc_inf_bits(&z, 5) + 257, ndist = (int)mlcc_inf_bits(&z, 5) + 1, ncode = (int)mlcc_inf_bits(&z, 4) + 4;
      if (z.bad || nlen > 286 || ndist > 30) return -1;
      memset(lengths, 0, 19);
      for (int i = 0; i < ncode; ++i) lengths[order[i]] = (uint8_t)mlcc_inf_bits(&z, 3);
      mlcc_huff lencode;
      if (z.bad || mlcc_huff_build(&lencode, lengths, 19)) return -1;
      for (int i = 0; i < nlen + ndist;) {
        int sym = mlcc_huff_decode(&z, &lencode), repeat, value = 0;
        if (sym < 0) return -1;
        if (sym < 16) {
          lengths[i++] = (uint8_t)sym;
          continue;
        }
        if (sym == 16) {
          if (i == 0) return -1;
          value = lengths[i - 1];
          repeat = 3 + (int)mlcc_inf_bits(&z, 2);
        } else if (sym == 17) {
          repeat = 3 + (int)mlcc_inf_bits(&z, 3);
        } else {
          repeat = 11 + (int)mlcc_inf_bits(&z, 7);
        }
        if (z.bad || i + repeat > nlen + ndist) return -1;
        while (repeat--) lengths[i++] = (uint8_t)value;
      }
      if (lengths[256] == 0 || mlcc_huff_build(&lit, lengths, nlen) || mlcc_huff_build(&dist, lengths + nlen, ndist))
        return -1;
    } else {
      return -1;
    }
    if (mlcc_inflate_codes(&z, &lit, &dist)) return -1;
  } while (!last);
  return z.pos;
}

/* ---- PNG: every colour type and bit depth, interlaced or not ---- */

static int mlcc_paeth(int a, int b, int c) {
  int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Undo the filters of one (sub)image of `rows` rows of `stride` bytes, in place; nonzero on a bad filter. */
/* Undo the filters of one (sub)image of `rows` rows of `stride` bytes, in place; `zero` is a row of zeros (the
   row above the first). Nonzero on a bad filter. The first pixel's bytes have no left neighbour (0). */
static int mlcc_unfilter(uint8_t *d, int64_t rows, int64_t stride, int bpp, const uint8_t *zero) {
  for (int64_t y = 0; y < rows; ++y) {
    uint8_t *row = d + y * (stride + 1) + 1;
    const uint8_t *up = y ? row - stride - 1 : zero;
    int64_t first = stride < bpp ? stride : bpp;
    switch (row[-1]) {
      case 0: break;
      case 1:
        for (int64_t i = bpp; i < stride; ++i) row[i] = (uint8_t)(row[i] + row[i - bpp]);
        break;
      case 2:
        for (int64_t i = 0; i < stride; ++i) row[i] = (uint8_t)(row[i] + up[i]);
        break;
      case 3:
        for (int64_t i = 0; i < first; ++i) row[i] = (uint8_t)(row[i] + (up[i] >> 1));
        for (int64_t i = bpp; i < stride; ++i) row[i] = (uint8_t)(row[i] + ((row[i - bpp] + up[i]) >> 1));
        break;
      case 4: /* Paeth: with no left neighbour the predictor is the byte above */
        for (int64_t i = 0; i < first; ++i) row[i] = (uint8_t)(row[i] + up[i]);
        for (int64_t i = bpp; i < stride; ++i) row[i] = (uint8_t)(row[i] + mlcc_paeth(row[i - bpp], up[i], up[i - bpp]));
        break;
      default: return 1;
    }
  }
  return 0;
}

static int mlcc_png(mlcc_img *img, const uint8_t *s, int64_t n) {
  int64_t at = 8, w = 0, h = 0, idat = 0;
  int depth = 0, type = -1, interlace = 0, have_header = 0, palette_size = 0;
  uint8_t palette[256][3];
  memset(palette, 0, sizeof palette);
  /* first pass over the chunks: header, palette, the compressed size */
  while (at + 12 <= n) {
    uint32_t len = mlcc_be32(s + at);
    const uint8_t *tag = s + at + 4, *body = s + at + 8;
    if (len > n - at - 12) return MLCC_ERR_BAD_DATA;
    if (!memcmp(tag, "IHDR", 4) && len >= 13) {
      w = mlcc_be32(body), h = mlcc_be32(body + 4), depth = body[8], type = body[9], interlace = body[12];
      have_header = 1;
    } else if (!memcmp(tag, "PLTE", 4)) {
      palette_size = (int)(len / 3 > 256 ? 256 : len / 3);
      memcpy(palette, body, (size_t)palette_size * 3);
    } else if (!memcmp(tag, "IDAT", 4)) {
      idat += len;
    } else if (!memcmp(tag, "IEND", 4)) {
      break;
    }
    at += 12 + (int64_t)len;
  }
  int channels = type == 0 ? 1 : type == 2 ? 3 : type == 3 ? 1 : type == 4 ? 2 : type == 6 ? 4 : 0;
  int valid = type == 0 ? (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)
            : type == 3 ? (depth == 1 || depth == 2 || depth == 4 || depth == 8)
                        : (depth == 8 || depth == 16);
  if (!have_header || !channels || !valid || interlace > 1 || !idat || (type == 3 && !palette_size))
    return MLCC_ERR_BAD_DATA;
  int st = mlcc_img_begin(img, w, h);
  if (st != MLCC_OK) return st;
  int bits = depth * channels, bpp = bits < 8 ? 1 : bits / 8;
  /* the raw size: per pass (one without interlacing) rows of a filter byte and the packed samples */
  static const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1}, dx[7] = {8, 8, 4, 4, 2, 2, 1},
                   dy[7] = {8, 8, 8, 4, 4, 2, 2};
  int passes = interlace ? 7 : 1;
  int64_t raw_size = 0, pw[7], ph[7];
  for (int p = 0; p < passes; ++p) {
    pw[p] = interlace ? (w - x0[p] + dx[p] - 1) / dx[p] : w;
    ph[p] = interlace ? (h - y0[p] + dy[p] - 1) / dy[p] : h;
    if (pw[p] > 0 && ph[p] > 0) raw_size += ph[p] * (1 + (pw[p] * bits + 7) / 8);
  }
  uint8_t *z = malloc((size_t)idat), *raw = malloc((size_t)raw_size), *rgb = malloc((size_t)w * 3 * h);
  uint8_t *zero = calloc((size_t)((w * bits + 7) / 8), 1); /* the row above the first */
  if (!z || !raw || !rgb || !zero) {
    free(z), free(raw), free(rgb), free(zero);
    return MLCC_ERR_OUT_OF_MEMORY;
  }
  int64_t zn = 0;
  for (at = 8; at + 12 <= n;) { /* gather the IDAT chunks */
    uint32_t len = mlcc_be32(s + at);
    if (!memcmp(s + at + 4, "IDAT", 4)) memcpy(z + zn, s + at + 8, len), zn += len;
    if (!memcmp(s + at + 4, "IEND", 4)) break;
    at += 12 + (int64_t)len;
  }
  if (mlcc_zlib(z, zn, raw, raw_size) != raw_size) st = MLCC_ERR_BAD_DATA;
  uint8_t *d = raw;
  for (int p = 0; p < passes && st == MLCC_OK; ++p) {
    if (pw[p] <= 0 || ph[p] <= 0) continue;
    int64_t stride = (pw[p] * bits + 7) / 8;
    if (mlcc_unfilter(d, ph[p], stride, bpp, zero)) {
      st = MLCC_ERR_BAD_DATA;
      break;
    }
    for (int64_t y = 0; y < ph[p]; ++y) {
      const uint8_t *row = d + y * (stride + 1) + 1;
      if (!interlace && depth == 8 && (type == 2 || type == 6)) { /* the common cases, without per-pixel tests */
        uint8_t *o = rgb + 3 * y * w;
        for (int64_t x = 0; x < w; ++x) o[3 * x] = row[x * bpp], o[3 * x + 1] = row[x * bpp + 1], o[3 * x + 2] = row[x * bpp + 2];
        continue;
      }
      for (int64_t x = 0; x < pw[p]; ++x) {
        int64_t X = interlace ? x0[p] + x * dx[p] : x, Y = interlace ? y0[p] + y * dy[p] : y;
        uint8_t *o = rgb + 3 * (Y * w + X);
        if (depth < 8) {
          int64_t bit = x * depth;
          unsigned v = (row[bit >> 3] >> (8 - depth - (bit & 7))) & ((1u << depth) - 1);
          if (type == 3) memcpy(o, v < (unsigned)palette_size ? palette[v] : (const uint8_t[3]){0, 0, 0}, 3);
          else o[0] = o[1] = o[2] = (uint8_t)(v * 255 / ((1u << depth) - 1));
        } else {
          const uint8_t *px = row + x * bpp; /* 16-bit samples: the high byte */
          int step = depth / 8;
          if (type == 3) memcpy(o, px[0] < palette_size ? palette[px[0]] : (const uint8_t[3]){0, 0, 0}, 3);
          else if (channels >= 3) o[0] = px[0], o[1] = px[step], o[2] = px[2 * step];
          else o[0] = o[1] = o[2] = px[0];
        }
      }
    }
    d += ph[p] * (stride + 1);
  }
  for (int64_t y = 0; y < h && st == MLCC_OK; ++y) mlcc_img_row(img, y, rgb + 3 * y * w);
  free(z), free(raw), free(rgb), free(zero);
  return st;
}

#include "mlcc_jpeg.h"
#include "mlcc_webp.h"
#include "mlcc_jpeg2k.h"
#include "mlcc_gif.h"

/* Decode `n` bytes at `s` into img->out; MLCC_OK with img->h and img->w set, or a status code. */
static int mlcc_image_decode(mlcc_img *img, const uint8_t *s, int64_t n) {
  img->h = img->w = 0;
  if (n >= 8 && !memcmp(s, "\x89PNG\r\n\x1a\n", 8)) return mlcc_png(img, s, n);
  if (n >= 3 && s[0] == 0xff && s[1] == 0xd8 && s[2] == 0xff) return mlcc_jpeg(img, s, n);
  if (n >= 2 && s[0] == 'B' && s[1] == 'M') return mlcc_bmp(img, s, n);
  if (n >= 3 && s[0] == 'P' && s[1] >= '1' && s[1] <= '6') return mlcc_pnm(img, s, n);
  if (n >= 8 && (!memcmp(s, "II*\0", 4) || !memcmp(s, "MM\0*", 4))) return mlcc_tiff_decode(img, s, n);
  if (n >= 12 && !memcmp(s, "RIFF", 4) && !memcmp(s + 8, "WEBP", 4)) return mlcc_webp(img, s, n);
  if ((n >= 12 && !memcmp(s, "\0\0\0\x0cjP  \r\n\x87\n", 12)) || (n >= 4 && !memcmp(s, "\xff\x4f\xff\x51", 4)))
    return mlcc_jpeg2k(img, s, n);
  if (n >= 6 && (!memcmp(s, "GIF87a", 6) || !memcmp(s, "GIF89a", 6))) return mlcc_gif(img, s, n);
  return MLCC_ERR_UNSUPPORTED_DATA; /* not an image in a format read here */
}

#endif
