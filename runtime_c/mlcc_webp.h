/* mlcc_webp.h: WebP for mlcc_image.h: the RIFF container, and lossy frames decoded as libwebp does with its
 * defaults (which Pillow uses).
 *
 * A RIFF "WEBP" file, plain or in the extended layout (VP8X, with ICCP, EXIF, XMP chunks skipped; an ALPH
 * chunk's alpha is not read, as the other decoders drop alpha), holding a VP8 key frame (RFC 6386) or a
 * lossless VP8L image (decoded by mlcc_vp8l.h). For VP8, the boolean entropy decoder, the frame and
 * macroblock headers, the token partitions, dequantisation, the Walsh-Hadamard and integer inverse DCT, the
 * intra predictors (with the standard's 127 / 129 edges) and the normal and simple loop filters follow the
 * standard; where it leaves a choice, libwebp's is taken (quantiser indices clamped after adding the deltas,
 * filter levels, the "inner edges" rule from the decoded coefficients). Macroblocks are reconstructed into
 * whole planes first (prediction reads unfiltered samples), then filtered in raster order. Output: libwebp's
 * "fancy" chroma upsampling (9-3-3-1 weights with its rounding) and its fixed-point BT.601 YUV to RGB.
 * Of an animation, the first frame is decoded onto its canvas (the rest black), as WebPAnimDecoder gives it. */
#ifndef MLCC_WEBP_H
#define MLCC_WEBP_H

/* The standard's tables (RFC 6386 sections 14.1, 13.4, 13.5 and 11.5): dequantisation factors by index,
 * the coefficient probabilities' update probabilities and defaults [type][band][context][token], and the
 * key frame subblock mode probabilities [above mode][left mode]; modes numbered as VP8_B_* below. */
static const uint8_t mlcc_vp8_dc_q[128] = {
  4, 5, 6, 7, 8, 9, 10, 10, 11, 12, 13, 14, 15, 16, 17, 17,
  18, 19, 20, 20, 21, 21, 22, 22, 23, 23, 24, 25, 25, 26, 27, 28,
  29, 30, 31, 32, 33, 34, 35, 36, 37, 37, 38, 39, 40, 41, 42, 43,
  44, 45, 46, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58,
  59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74,
  75, 76, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89,
  91, 93, 95, 96, 98, 100, 101, 102, 104, 106, 108, 110, 112, 114, 116, 118,
  122, 124, 126, 128, 130, 132, 134, 136, 138, 140, 143, 145, 148, 151, 154, 157,
};
static const uint16_t mlcc_vp8_ac_q[128] = {
  4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
  20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
  36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
  52, 53, 54, 55, 56, 57, 58, 60, 62, 64, 66, 68, 70, 72, 74, 76,
  78, 80, 82, 84, 86, 88, 90, 92, 94, 96, 98, 100, 102, 104, 106, 108,
  110, 112, 114, 116, 119, 122, 125, 128, 131, 134, 137, 140, 143, 146, 149, 152,
  155, 158, 161, 164, 167, 170, 173, 177, 181, 185, 189, 193, 197, 201, 205, 209,
  213, 217, 221, 225, 229, 234, 239, 245, 249, 254, 259, 264, 269, 274, 279, 284,
};
static const uint8_t mlcc_vp8_coef_update[4 * 8 * 3 * 11] = {
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 176, 246, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  223, 241, 252, 255, 255, 255, 255, 255, 255, 255, 255, 249, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 244, 252, 255, 255, 255, 255, 255, 255, 255, 255, 234, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 246, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  239, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255, 254, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 248, 254, 255, 255, 255, 255, 255, 255, 255, 255, 251, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  251, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255, 254, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 254, 253, 255, 254, 255, 255, 255, 255, 255, 255, 250, 255, 254, 255, 254, 255, 255, 255, 255, 255, 255,
  254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  217, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 225, 252, 241, 253, 255, 255, 254, 255, 255, 255, 255,
  234, 250, 241, 250, 253, 255, 253, 254, 255, 255, 255, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  223, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255, 238, 253, 254, 254, 255, 255, 255, 255, 255, 255, 255,
  255, 248, 254, 255, 255, 255, 255, 255, 255, 255, 255, 249, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 253, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  247, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255, 252, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 254, 253, 255, 255, 255, 255, 255, 255, 255, 255, 250, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  186, 251, 250, 255, 255, 255, 255, 255, 255, 255, 255, 234, 251, 244, 254, 255, 255, 255, 255, 255, 255, 255,
  251, 251, 243, 253, 254, 255, 254, 255, 255, 255, 255, 255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  236, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255, 251, 253, 253, 254, 254, 255, 255, 255, 255, 255, 255,
  255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255, 254, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  254, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  248, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 250, 254, 252, 254, 255, 255, 255, 255, 255, 255, 255,
  248, 254, 249, 253, 255, 255, 255, 255, 255, 255, 255, 255, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255,
  246, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255, 252, 254, 251, 254, 254, 255, 255, 255, 255, 255, 255,
  255, 254, 252, 255, 255, 255, 255, 255, 255, 255, 255, 248, 254, 253, 255, 255, 255, 255, 255, 255, 255, 255,
  253, 255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255, 251, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  245, 251, 254, 255, 255, 255, 255, 255, 255, 255, 255, 253, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 251, 253, 255, 255, 255, 255, 255, 255, 255, 255, 252, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 252, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  249, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 253, 255, 255, 255, 255, 255, 255, 255, 255, 250, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
  254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
};
static const uint8_t mlcc_vp8_coef_default[4 * 8 * 3 * 11] = {
  128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
  128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 253, 136, 254, 255, 228, 219, 128, 128, 128, 128, 128,
  189, 129, 242, 255, 227, 213, 255, 219, 128, 128, 128, 106, 126, 227, 252, 214, 209, 255, 255, 128, 128, 128,
  1, 98, 248, 255, 236, 226, 255, 255, 128, 128, 128, 181, 133, 238, 254, 221, 234, 255, 154, 128, 128, 128,
  78, 134, 202, 247, 198, 180, 255, 219, 128, 128, 128, 1, 185, 249, 255, 243, 255, 128, 128, 128, 128, 128,
  184, 150, 247, 255, 236, 224, 128, 128, 128, 128, 128, 77, 110, 216, 255, 236, 230, 128, 128, 128, 128, 128,
  1, 101, 251, 255, 241, 255, 128, 128, 128, 128, 128, 170, 139, 241, 252, 236, 209, 255, 255, 128, 128, 128,
  37, 116, 196, 243, 228, 255, 255, 255, 128, 128, 128, 1, 204, 254, 255, 245, 255, 128, 128, 128, 128, 128,
  207, 160, 250, 255, 238, 128, 128, 128, 128, 128, 128, 102, 103, 231, 255, 211, 171, 128, 128, 128, 128, 128,
  1, 152, 252, 255, 240, 255, 128, 128, 128, 128, 128, 177, 135, 243, 255, 234, 225, 128, 128, 128, 128, 128,
  80, 129, 211, 255, 194, 224, 128, 128, 128, 128, 128, 1, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
  246, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128, 255, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
  198, 35, 237, 223, 193, 187, 162, 160, 145, 155, 62, 131, 45, 198, 221, 172, 176, 220, 157, 252, 221, 1,
  68, 47, 146, 208, 149, 167, 221, 162, 255, 223, 128, 1, 149, 241, 255, 221, 224, 255, 255, 128, 128, 128,
  184, 141, 234, 253, 222, 220, 255, 199, 128, 128, 128, 81, 99, 181, 242, 176, 190, 249, 202, 255, 255, 128,
  1, 129, 232, 253, 214, 197, 242, 196, 255, 255, 128, 99, 121, 210, 250, 201, 198, 255, 202, 128, 128, 128,
  23, 91, 163, 242, 170, 187, 247, 210, 255, 255, 128, 1, 200, 246, 255, 234, 255, 128, 128, 128, 128, 128,
  109, 178, 241, 255, 231, 245, 255, 255, 128, 128, 128, 44, 130, 201, 253, 205, 192, 255, 255, 128, 128, 128,
  1, 132, 239, 251, 219, 209, 255, 165, 128, 128, 128, 94, 136, 225, 251, 218, 190, 255, 255, 128, 128, 128,
  22, 100, 174, 245, 186, 161, 255, 199, 128, 128, 128, 1, 182, 249, 255, 232, 235, 128, 128, 128, 128, 128,
  124, 143, 241, 255, 227, 234, 128, 128, 128, 128, 128, 35, 77, 181, 251, 193, 211, 255, 205, 128, 128, 128,
  1, 157, 247, 255, 236, 231, 255, 255, 128, 128, 128, 121, 141, 235, 255, 225, 227, 255, 255, 128, 128, 128,
  45, 99, 188, 251, 195, 217, 255, 224, 128, 128, 128, 1, 1, 251, 255, 213, 255, 128, 128, 128, 128, 128,
  203, 1, 248, 255, 255, 128, 128, 128, 128, 128, 128, 137, 1, 177, 255, 224, 255, 128, 128, 128, 128, 128,
  253, 9, 248, 251, 207, 208, 255, 192, 128, 128, 128, 175, 13, 224, 243, 193, 185, 249, 198, 255, 255, 128,
  73, 17, 171, 221, 161, 179, 236, 167, 255, 234, 128, 1, 95, 247, 253, 212, 183, 255, 255, 128, 128, 128,
  239, 90, 244, 250, 211, 209, 255, 255, 128, 128, 128, 155, 77, 195, 248, 188, 195, 255, 255, 128, 128, 128,
  1, 24, 239, 251, 218, 219, 255, 205, 128, 128, 128, 201, 51, 219, 255, 196, 186, 128, 128, 128, 128, 128,
  69, 46, 190, 239, 201, 218, 255, 228, 128, 128, 128, 1, 191, 251, 255, 255, 128, 128, 128, 128, 128, 128,
  223, 165, 249, 255, 213, 255, 128, 128, 128, 128, 128, 141, 124, 248, 255, 255, 128, 128, 128, 128, 128, 128,
  1, 16, 248, 255, 255, 128, 128, 128, 128, 128, 128, 190, 36, 230, 255, 236, 255, 128, 128, 128, 128, 128,
  149, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128, 1, 226, 255, 128, 128, 128, 128, 128, 128, 128, 128,
  247, 192, 255, 128, 128, 128, 128, 128, 128, 128, 128, 240, 128, 255, 128, 128, 128, 128, 128, 128, 128, 128,
  1, 134, 252, 255, 255, 128, 128, 128, 128, 128, 128, 213, 62, 250, 255, 255, 128, 128, 128, 128, 128, 128,
  55, 93, 255, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
  128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
  202, 24, 213, 235, 186, 191, 220, 160, 240, 175, 255, 126, 38, 182, 232, 169, 184, 228, 174, 255, 187, 128,
  61, 46, 138, 219, 151, 178, 240, 170, 255, 216, 128, 1, 112, 230, 250, 199, 191, 247, 159, 255, 255, 128,
  166, 109, 228, 252, 211, 215, 255, 174, 128, 128, 128, 39, 77, 162, 232, 172, 180, 245, 178, 255, 255, 128,
  1, 52, 220, 246, 198, 199, 249, 220, 255, 255, 128, 124, 74, 191, 243, 183, 193, 250, 221, 255, 255, 128,
  24, 71, 130, 219, 154, 170, 243, 182, 255, 255, 128, 1, 182, 225, 249, 219, 240, 255, 224, 128, 128, 128,
  149, 150, 226, 252, 216, 205, 255, 171, 128, 128, 128, 28, 108, 170, 242, 183, 194, 254, 223, 255, 255, 128,
  1, 81, 230, 252, 204, 203, 255, 192, 128, 128, 128, 123, 102, 209, 247, 188, 196, 255, 233, 128, 128, 128,
  20, 95, 153, 243, 164, 173, 255, 203, 128, 128, 128, 1, 222, 248, 255, 216, 213, 128, 128, 128, 128, 128,
  168, 175, 246, 252, 235, 205, 255, 255, 128, 128, 128, 47, 116, 215, 255, 211, 212, 255, 255, 128, 128, 128,
  1, 121, 236, 253, 212, 214, 255, 255, 128, 128, 128, 141, 84, 213, 252, 201, 202, 255, 219, 128, 128, 128,
  42, 80, 160, 240, 162, 185, 255, 205, 128, 128, 128, 1, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
  244, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128, 238, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
};
static const uint8_t mlcc_vp8_bmode_prob[10 * 10 * 9] = {
  231, 120, 48, 89, 115, 113, 120, 152, 112, 152, 179, 64, 126, 170, 118, 46, 70, 95,
  175, 69, 143, 80, 85, 82, 72, 155, 103, 56, 58, 10, 171, 218, 189, 17, 13, 152,
  114, 26, 17, 163, 44, 195, 21, 10, 173, 121, 24, 80, 195, 26, 62, 44, 64, 85,
  144, 71, 10, 38, 171, 213, 144, 34, 26, 170, 46, 55, 19, 136, 160, 33, 206, 71,
  63, 20, 8, 114, 114, 208, 12, 9, 226, 81, 40, 11, 96, 182, 84, 29, 16, 36,
  134, 183, 89, 137, 98, 101, 106, 165, 148, 72, 187, 100, 130, 157, 111, 32, 75, 80,
  66, 102, 167, 99, 74, 62, 40, 234, 128, 41, 53, 9, 178, 241, 141, 26, 8, 107,
  74, 43, 26, 146, 73, 166, 49, 23, 157, 65, 38, 105, 160, 51, 52, 31, 115, 128,
  104, 79, 12, 27, 217, 255, 87, 17, 7, 87, 68, 71, 44, 114, 51, 15, 186, 23,
  47, 41, 14, 110, 182, 183, 21, 17, 194, 66, 45, 25, 102, 197, 189, 23, 18, 22,
  88, 88, 147, 150, 42, 46, 45, 196, 205, 43, 97, 183, 117, 85, 38, 35, 179, 61,
  39, 53, 200, 87, 26, 21, 43, 232, 171, 56, 34, 51, 104, 114, 102, 29, 93, 77,
  39, 28, 85, 171, 58, 165, 90, 98, 64, 34, 22, 116, 206, 23, 34, 43, 166, 73,
  107, 54, 32, 26, 51, 1, 81, 43, 31, 68, 25, 106, 22, 64, 171, 36, 225, 114,
  34, 19, 21, 102, 132, 188, 16, 76, 124, 62, 18, 78, 95, 85, 57, 50, 48, 51,
  193, 101, 35, 159, 215, 111, 89, 46, 111, 60, 148, 31, 172, 219, 228, 21, 18, 111,
  112, 113, 77, 85, 179, 255, 38, 120, 114, 40, 42, 1, 196, 245, 209, 10, 25, 109,
  88, 43, 29, 140, 166, 213, 37, 43, 154, 61, 63, 30, 155, 67, 45, 68, 1, 209,
  100, 80, 8, 43, 154, 1, 51, 26, 71, 142, 78, 78, 16, 255, 128, 34, 197, 171,
  41, 40, 5, 102, 211, 183, 4, 1, 221, 51, 50, 17, 168, 209, 192, 23, 25, 82,
  138, 31, 36, 171, 27, 166, 38, 44, 229, 67, 87, 58, 169, 82, 115, 26, 59, 179,
  63, 59, 90, 180, 59, 166, 93, 73, 154, 40, 40, 21, 116, 143, 209, 34, 39, 175,
  47, 15, 16, 183, 34, 223, 49, 45, 183, 46, 17, 33, 183, 6, 98, 15, 32, 183,
  57, 46, 22, 24, 128, 1, 54, 17, 37, 65, 32, 73, 115, 28, 128, 23, 128, 205,
  40, 3, 9, 115, 51, 192, 18, 6, 223, 87, 37, 9, 115, 59, 77, 64, 21, 47,
  104, 55, 44, 218, 9, 54, 53, 130, 226, 64, 90, 70, 205, 40, 41, 23, 26, 57,
  54, 57, 112, 184, 5, 41, 38, 166, 213, 30, 34, 26, 133, 152, 116, 10, 32, 134,
  39, 19, 53, 221, 26, 114, 32, 73, 255, 31, 9, 65, 234, 2, 15, 1, 118, 73,
  75, 32, 12, 51, 192, 255, 160, 43, 51, 88, 31, 35, 67, 102, 85, 55, 186, 85,
  56, 21, 23, 111, 59, 205, 45, 37, 192, 55, 38, 70, 124, 73, 102, 1, 34, 98,
  125, 98, 42, 88, 104, 85, 117, 175, 82, 95, 84, 53, 89, 128, 100, 113, 101, 45,
  75, 79, 123, 47, 51, 128, 81, 171, 1, 57, 17, 5, 71, 102, 57, 53, 41, 49,
  38, 33, 13, 121, 57, 73, 26, 1, 85, 41, 10, 67, 138, 77, 110, 90, 47, 114,
  115, 21, 2, 10, 102, 255, 166, 23, 6, 101, 29, 16, 10, 85, 128, 101, 196, 26,
  57, 18, 10, 102, 102, 213, 34, 20, 43, 117, 20, 15, 36, 163, 128, 68, 1, 26,
  102, 61, 71, 37, 34, 53, 31, 243, 192, 69, 60, 71, 38, 73, 119, 28, 222, 37,
  68, 45, 128, 34, 1, 47, 11, 245, 171, 62, 17, 19, 70, 146, 85, 55, 62, 70,
  37, 43, 37, 154, 100, 163, 85, 160, 1, 63, 9, 92, 136, 28, 64, 32, 201, 85,
  75, 15, 9, 9, 64, 255, 184, 119, 16, 86, 6, 28, 5, 64, 255, 25, 248, 1,
  56, 8, 17, 132, 137, 255, 55, 116, 128, 58, 15, 20, 82, 135, 57, 26, 121, 40,
  164, 50, 31, 137, 154, 133, 25, 35, 218, 51, 103, 44, 131, 131, 123, 31, 6, 158,
  86, 40, 64, 135, 148, 224, 45, 183, 128, 22, 26, 17, 131, 240, 154, 14, 1, 209,
  45, 16, 21, 91, 64, 222, 7, 1, 197, 56, 21, 39, 155, 60, 138, 23, 102, 213,
  83, 12, 13, 54, 192, 255, 68, 47, 28, 85, 26, 85, 85, 128, 128, 32, 146, 171,
  18, 11, 7, 63, 144, 171, 4, 4, 246, 35, 27, 10, 146, 174, 171, 12, 26, 128,
  190, 80, 35, 99, 180, 80, 126, 54, 45, 85, 126, 47, 87, 176, 51, 41, 20, 32,
  101, 75, 128, 139, 118, 146, 116, 128, 85, 56, 41, 15, 176, 236, 85, 37, 9, 62,
  71, 30, 17, 119, 118, 255, 17, 18, 138, 101, 38, 60, 138, 55, 70, 43, 26, 142,
  146, 36, 19, 30, 171, 255, 97, 27, 20, 138, 45, 61, 62, 219, 1, 81, 188, 64,
  32, 41, 20, 117, 151, 142, 20, 21, 163, 112, 19, 12, 61, 195, 128, 48, 4, 24,
};

static const uint8_t mlcc_vp8_zigzag[16] = {0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15};
static const uint8_t mlcc_vp8_band[17] = {0, 1, 2, 3, 6, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 0};
/* Extra bits of the large-coefficient categories 3 to 6, each list ending in 0. */
static const uint8_t mlcc_vp8_cat[4][12] = {{173, 148, 140},
                                            {176, 155, 140, 135},
                                            {180, 157, 141, 134, 130},
                                            {254, 254, 243, 230, 196, 177, 153, 140, 133, 130, 129}};

/* Intra modes: the 16x16 and chroma ones are the first four. */
enum { VP8_B_DC, VP8_B_TM, VP8_B_VE, VP8_B_HE, VP8_B_RD, VP8_B_VR, VP8_B_LD, VP8_B_VL, VP8_B_HD, VP8_B_HU };

/* ---- boolean entropy decoder (RFC 6386 section 7) ---- */

typedef struct {
  const uint8_t *s, *end;
  uint64_t value; /* `count` bits not yet consumed, the first in the highest place */
  int count;
  uint32_t range; /* 128 to 255 between decisions */
  int eof;        /* set once bits past the end were needed (read as zeros) */
} mlcc_vp8bits;

static void mlcc_vp8bits_init(mlcc_vp8bits *b, const uint8_t *s, int64_t n) {
  b->s = s;
  b->end = s + n;
  b->value = 0;
  b->count = 0;
  b->range = 255;
  b->eof = 0;
}

static inline int mlcc_vp8_bit(mlcc_vp8bits *b, uint32_t prob) {
  if (b->count < 8) {
    while (b->count <= 56 && b->s < b->end) b->value = b->value << 8 | *b->s++, b->count += 8;
    if (b->count < 8) b->value <<= 8, b->count += 8, b->eof = 1;
  }
  uint32_t split = 1 + (((b->range - 1) * prob) >> 8);
  uint64_t at = (uint64_t)split << (b->count - 8);
  int bit = b->value >= at;
  if (bit) b->value -= at, b->range -= split;
  else b->range = split;
#if defined(__GNUC__)
  int shift = __builtin_clz(b->range) - 24; /* back to 128..255 */
  b->range <<= shift, b->count -= shift;
#else
  while (b->range < 128) b->range <<= 1, --b->count;
#endif
  return bit;
}

static int mlcc_vp8_literal(mlcc_vp8bits *b, int n) {
  int v = 0;
  while (n--) v = v << 1 | mlcc_vp8_bit(b, 128);
  return v;
}

/* A flag, then (if set) an n-bit magnitude and its sign; 0 without the flag. */
static int mlcc_vp8_delta(mlcc_vp8bits *b, int n) {
  if (!mlcc_vp8_bit(b, 128)) return 0;
  int v = mlcc_vp8_literal(b, n);
  return mlcc_vp8_bit(b, 128) ? -v : v;
}

/* ---- decoder state ---- */

typedef struct {
  int64_t w, h, mbw, mbh, ys, uvs; /* the planes are mbw * 16 (luma) and mbw * 8 (chroma) samples wide */
  uint8_t *y, *u, *v;
  mlcc_vp8bits hdr, part[8];
  int nparts;
  int seg_map, seg_prob[3];
  int skip_on, skip_prob;
  int filter_type;                  /* 0 none, 1 simple, 2 normal */
  int limit[4][2], ilevel[4][2], hev[4][2]; /* by segment and by "macroblock uses 4x4 modes" */
  int dq[4][3][2];                  /* by segment: luma, Y2, chroma; DC and AC factors */
  uint8_t coef[4][8][3][11];
  uint8_t *top_modes, left_modes[4]; /* subblock modes along the edges, for the mode contexts */
  uint8_t *top_nz, left_nz[9];       /* per edge block: has coefficients (4 Y, 2 U, 2 V, Y2) */
  uint8_t *mb_info;                  /* per macroblock: segment | 4x4 << 2 | inner edges filtered << 3 */
} mlcc_vp8;

/* ---- frame header (RFC 6386 section 9), read from the first partition ---- */

static int mlcc_vp8_header(mlcc_vp8 *d, const uint8_t *s, int64_t n) {
  mlcc_vp8bits *b = &d->hdr;
  int seg_on = 0, seg_abs = 1, seg_q[4] = {0}, seg_lf[4] = {0};
  d->seg_map = 0;
  d->seg_prob[0] = d->seg_prob[1] = d->seg_prob[2] = 255;
  mlcc_vp8_literal(b, 2); /* colour space and clamping type: reserved, and clamping is always done */
  if ((seg_on = mlcc_vp8_bit(b, 128))) {
    d->seg_map = mlcc_vp8_bit(b, 128);
    if (mlcc_vp8_bit(b, 128)) { /* segment data */
      seg_abs = mlcc_vp8_bit(b, 128);
      for (int i = 0; i < 4; ++i) seg_q[i] = mlcc_vp8_delta(b, 7);
      for (int i = 0; i < 4; ++i) seg_lf[i] = mlcc_vp8_delta(b, 6);
    }
    if (d->seg_map)
      for (int i = 0; i < 3; ++i) d->seg_prob[i] = mlcc_vp8_bit(b, 128) ? mlcc_vp8_literal(b, 8) : 255;
  }
  int simple = mlcc_vp8_bit(b, 128), level = mlcc_vp8_literal(b, 6), sharpness = mlcc_vp8_literal(b, 3);
  int ref_delta = 0, mode_delta = 0; /* only the intra frame's deltas matter: [0] of each list */
  if (mlcc_vp8_bit(b, 128) && mlcc_vp8_bit(b, 128)) { /* deltas on, and updated */
    for (int i = 0; i < 8; ++i) {
      int v = mlcc_vp8_delta(b, 6);
      if (i == 0) ref_delta = v;
      if (i == 4) mode_delta = v;
    }
  }
  d->filter_type = level == 0 ? 0 : simple ? 1 : 2;
  /* token partitions: their sizes (3 bytes each but the last's) follow the first partition */
  d->nparts = 1 << mlcc_vp8_literal(b, 2);
  int64_t at = 3 * (int64_t)(d->nparts - 1);
  if (n < at) return MLCC_ERR_BAD_DATA;
  for (int p = 0; p < d->nparts; ++p) {
    int64_t size = p < d->nparts - 1 ? (int64_t)(s[3 * p] | s[3 * p + 1] << 8 | s[3 * p + 2] << 16) : n - at;
    if (size > n - at) size = n - at;
    mlcc_vp8bits_init(&d->part[p], s + at, size);
    at += size;
  }
  /* quantisers */
  int q0 = mlcc_vp8_literal(b, 7), dy1dc = mlcc_vp8_delta(b, 4), dy2dc = mlcc_vp8_delta(b, 4);
  int dy2ac = mlcc_vp8_delta(b, 4), duvdc = mlcc_vp8_delta(b, 4), duvac = mlcc_vp8_delta(b, 4);
#define MLCC_VP8_Q(v, top) ((v) < 0 ? 0 : (v) > (top) ? (top) : (v))
  for (int i = 0; i < 4; ++i) {
    int q = seg_on ? seg_q[i] + (seg_abs ? 0 : q0) : q0;
    int(*m)[2] = d->dq[i];
    m[0][0] = mlcc_vp8_dc_q[MLCC_VP8_Q(q + dy1dc, 127)];
    m[0][1] = mlcc_vp8_ac_q[MLCC_VP8_Q(q, 127)];
    m[1][0] = mlcc_vp8_dc_q[MLCC_VP8_Q(q + dy2dc, 127)] * 2;
    m[1][1] = mlcc_vp8_ac_q[MLCC_VP8_Q(q + dy2ac, 127)] * 155 / 100;
    if (m[1][1] < 8) m[1][1] = 8;
    m[2][0] = mlcc_vp8_dc_q[MLCC_VP8_Q(q + duvdc, 117)];
    m[2][1] = mlcc_vp8_ac_q[MLCC_VP8_Q(q + duvac, 127)];
    /* loop filter strengths (libwebp's PrecomputeFilterStrengths) */
    int base = seg_on ? seg_lf[i] + (seg_abs ? 0 : level) : level;
    for (int i4 = 0; i4 < 2; ++i4) {
      int lv = MLCC_VP8_Q(base + ref_delta + (i4 ? mode_delta : 0), 63), il = lv;
      if (sharpness > 0) {
        il >>= sharpness > 4 ? 2 : 1;
        if (il > 9 - sharpness) il = 9 - sharpness;
      }
      if (il < 1) il = 1;
      d->limit[i][i4] = lv ? 2 * lv + il : 0;
      d->ilevel[i][i4] = il;
      d->hev[i][i4] = lv >= 40 ? 2 : lv >= 15 ? 1 : 0;
    }
  }
#undef MLCC_VP8_Q
  mlcc_vp8_bit(b, 128); /* refresh_entropy_probs: no later frame to keep them for */
  const uint8_t *upd = mlcc_vp8_coef_update, *def = mlcc_vp8_coef_default;
  uint8_t *p = &d->coef[0][0][0][0];
  for (int i = 0; i < 4 * 8 * 3 * 11; ++i) p[i] = mlcc_vp8_bit(b, upd[i]) ? (uint8_t)mlcc_vp8_literal(b, 8) : def[i];
  if ((d->skip_on = mlcc_vp8_bit(b, 128))) d->skip_prob = mlcc_vp8_literal(b, 8);
  return b->eof ? MLCC_ERR_BAD_DATA : MLCC_OK;
}

/* ---- tokens (RFC 6386 section 13) ---- */

/* One block's coefficients from position n on, dequantised into out (natural order); returns the position
 * after the last token read before the end of block (16 when the block runs to the end). */
static int mlcc_vp8_tokens(mlcc_vp8bits *b, uint8_t (*bands)[3][11], int ctx, const int dq[2], int n,
                           int16_t *out) {
  const uint8_t *p = bands[mlcc_vp8_band[n]][ctx];
  for (; n < 16; ++n) {
    if (!mlcc_vp8_bit(b, p[0])) return n; /* end of block */
    while (!mlcc_vp8_bit(b, p[1])) {      /* a zero: no end of block may follow it */
      if (++n == 16) return 16;
      p = bands[mlcc_vp8_band[n]][0];
    }
    int v, next;
    if (!mlcc_vp8_bit(b, p[2])) {
      v = 1, next = 1;
    } else {
      next = 2;
      if (!mlcc_vp8_bit(b, p[3])) {
        v = !mlcc_vp8_bit(b, p[4]) ? 2 : 3 + mlcc_vp8_bit(b, p[5]);
      } else if (!mlcc_vp8_bit(b, p[6])) {
        if (!mlcc_vp8_bit(b, p[7])) v = 5 + mlcc_vp8_bit(b, 159);
        else v = 7 + 2 * mlcc_vp8_bit(b, 165), v += mlcc_vp8_bit(b, 145);
      } else {
        int hi = mlcc_vp8_bit(b, p[8]);
        int cat = 2 * hi + mlcc_vp8_bit(b, p[9 + hi]);
        v = 0;
        for (const uint8_t *e = mlcc_vp8_cat[cat]; *e; ++e) v = 2 * v + mlcc_vp8_bit(b, *e);
        v += 3 + (8 << cat);
      }
    }
    if (mlcc_vp8_bit(b, 128)) v = -v;
    out[mlcc_vp8_zigzag[n]] = (int16_t)(v * dq[n > 0]); /* int16 as libwebp keeps them */
    p = bands[mlcc_vp8_band[n + 1]][next];
  }
  return 16;
}

/* The inverse Walsh-Hadamard transform of the Y2 block into the DC of the 16 luma blocks. */
static void mlcc_vp8_iwht(const int16_t *in, int16_t *out) {
  int t[16];
  for (int i = 0; i < 4; ++i) {
    int a0 = in[i] + in[12 + i], a1 = in[4 + i] + in[8 + i];
    int a2 = in[4 + i] - in[8 + i], a3 = in[i] - in[12 + i];
    t[i] = a0 + a1, t[8 + i] = a0 - a1, t[4 + i] = a3 + a2, t[12 + i] = a3 - a2;
  }
  for (int i = 0; i < 4; ++i) {
    int dc = t[4 * i] + 3, a0 = dc + t[4 * i + 3], a1 = t[4 * i + 1] + t[4 * i + 2];
    int a2 = t[4 * i + 1] - t[4 * i + 2], a3 = dc - t[4 * i + 3];
    int16_t *o = out + 64 * i;
    o[0] = (int16_t)((a0 + a1) >> 3), o[16] = (int16_t)((a3 + a2) >> 3);
    o[32] = (int16_t)((a0 - a1) >> 3), o[48] = (int16_t)((a3 - a2) >> 3);
  }
}

/* Reads a macroblock's modes (first partition) and coefficients (its token partition): 16 luma, 4 U and 4 V
 * blocks of 16 in c; modes[0] is the 16x16 mode, or modes[0..15] the subblock modes. Returns the mb_info byte. */
static int mlcc_vp8_macroblock(mlcc_vp8 *d, int64_t mx, mlcc_vp8bits *tok, int *modes, int *uvmode, int16_t *c) {
  mlcc_vp8bits *b = &d->hdr;
  int seg = 0, skip = 0;
  if (d->seg_map) seg = !mlcc_vp8_bit(b, d->seg_prob[0]) ? mlcc_vp8_bit(b, d->seg_prob[1])
                                                          : 2 + mlcc_vp8_bit(b, d->seg_prob[2]);
  if (d->skip_on) skip = mlcc_vp8_bit(b, d->skip_prob);
  uint8_t *top = d->top_modes + 4 * mx, *left = d->left_modes;
  int i4 = !mlcc_vp8_bit(b, 145);
  if (!i4) {
    int m = mlcc_vp8_bit(b, 156) ? (mlcc_vp8_bit(b, 128) ? VP8_B_TM : VP8_B_HE)
                                 : (mlcc_vp8_bit(b, 163) ? VP8_B_VE : VP8_B_DC);
    memset(top, m, 4), memset(left, m, 4);
    modes[0] = m;
  } else {
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) {
        const uint8_t *p = mlcc_vp8_bmode_prob + (top[x] * 10 + left[y]) * 9;
        int m;
        if (!mlcc_vp8_bit(b, p[0])) m = VP8_B_DC;
        else if (!mlcc_vp8_bit(b, p[1])) m = VP8_B_TM;
        else if (!mlcc_vp8_bit(b, p[2])) m = VP8_B_VE;
        else if (!mlcc_vp8_bit(b, p[3]))
          m = !mlcc_vp8_bit(b, p[4]) ? VP8_B_HE : !mlcc_vp8_bit(b, p[5]) ? VP8_B_RD : VP8_B_VR;
        else if (!mlcc_vp8_bit(b, p[6])) m = VP8_B_LD;
        else m = !mlcc_vp8_bit(b, p[7]) ? VP8_B_VL : !mlcc_vp8_bit(b, p[8]) ? VP8_B_HD : VP8_B_HU;
        top[x] = left[y] = (uint8_t)m;
        modes[4 * y + x] = m;
      }
  }
  *uvmode = !mlcc_vp8_bit(b, 142) ? VP8_B_DC
            : !mlcc_vp8_bit(b, 114) ? VP8_B_VE
            : mlcc_vp8_bit(b, 183)  ? VP8_B_TM
                                    : VP8_B_HE;

  uint8_t *tnz = d->top_nz + 9 * mx, *lnz = d->left_nz;
  memset(c, 0, 384 * sizeof *c);
  int coded = 0; /* libwebp's "non-zero" blocks: a token past the second position, or a non-zero DC */
  if (skip) {
    memset(tnz, 0, 8), memset(lnz, 0, 8);
    if (!i4) tnz[8] = lnz[8] = 0;
  } else {
    int (*q)[2] = d->dq[seg], first = 0, type = 3;
    if (!i4) {
      int16_t dc[16] = {0};
      int nz = mlcc_vp8_tokens(tok, d->coef[1], tnz[8] + lnz[8], q[1], 0, dc);
      tnz[8] = lnz[8] = nz > 0;
      mlcc_vp8_iwht(dc, c);
      first = 1, type = 0;
    }
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) {
        int16_t *o = c + 16 * (4 * y + x);
        int nz = mlcc_vp8_tokens(tok, d->coef[type], tnz[x] + lnz[y], q[0], first, o);
        tnz[x] = lnz[y] = nz > first;
        coded |= nz > 1 || o[0] != 0;
      }
    for (int k = 0; k < 8; ++k) { /* U then V, 2x2 blocks each */
      int x = 4 + (k >> 2) * 2 + (k & 1), y = 4 + (k >> 2) * 2 + ((k >> 1) & 1);
      int16_t *o = c + 256 + 16 * k;
      int nz = mlcc_vp8_tokens(tok, d->coef[2], tnz[x] + lnz[y], q[2], 0, o);
      tnz[x] = lnz[y] = nz > 0;
      coded |= nz > 1 || o[0] != 0;
    }
  }
  return seg | i4 << 2 | (i4 || coded) << 3;
}

/* ---- reconstruction: prediction plus inverse DCT, in a work area with the edges around the block ---- */

#define MLCC_VP8_WS 32 /* the work area's row stride */

static uint8_t mlcc_vp8_clip(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* Adds the inverse DCT of 16 coefficients to a 4x4 block (RFC 6386 section 14.3; libwebp's rounding). */
static void mlcc_vp8_idct_add(const int16_t *in, uint8_t *dst, int64_t stride) {
#define MLCC_VP8_M1(a) ((((a) * 20091) >> 16) + (a))
#define MLCC_VP8_M2(a) (((a) * 35468) >> 16)
  int t[16];
  for (int i = 0; i < 4; ++i) { /* columns */
    int a = in[i] + in[8 + i], b = in[i] - in[8 + i];
    int c = MLCC_VP8_M2(in[4 + i]) - MLCC_VP8_M1(in[12 + i]), d = MLCC_VP8_M1(in[4 + i]) + MLCC_VP8_M2(in[12 + i]);
    t[4 * i] = a + d, t[4 * i + 1] = b + c, t[4 * i + 2] = b - c, t[4 * i + 3] = a - d;
  }
  for (int i = 0; i < 4; ++i, dst += stride) { /* rows */
    int dc = t[i] + 4, a = dc + t[8 + i], b = dc - t[8 + i];
    int c = MLCC_VP8_M2(t[4 + i]) - MLCC_VP8_M1(t[12 + i]), d = MLCC_VP8_M1(t[4 + i]) + MLCC_VP8_M2(t[12 + i]);
    dst[0] = mlcc_vp8_clip(dst[0] + ((a + d) >> 3)), dst[1] = mlcc_vp8_clip(dst[1] + ((b + c) >> 3));
    dst[2] = mlcc_vp8_clip(dst[2] + ((b - c) >> 3)), dst[3] = mlcc_vp8_clip(dst[3] + ((a - d) >> 3));
  }
#undef MLCC_VP8_M1
#undef MLCC_VP8_M2
}

static int mlcc_vp8_any(const int16_t *c) {
  for (int i = 0; i < 16; ++i)
    if (c[i]) return 1;
  return 0;
}

/* A size x size block (16 luma, 8 chroma) predicted with a whole-block mode; the DC mode averages only the
 * edges inside the frame (128 with neither). */
static void mlcc_vp8_predict(uint8_t *d, int size, int mode, int has_top, int has_left) {
  const uint8_t *top = d - MLCC_VP8_WS;
  for (int y = 0; y < size; ++y) {
    uint8_t *row = d + y * MLCC_VP8_WS;
    if (mode == VP8_B_VE) memcpy(row, top, (size_t)size);
    else if (mode == VP8_B_HE) memset(row, row[-1], (size_t)size);
    else if (mode == VP8_B_TM)
      for (int x = 0; x < size; ++x) row[x] = mlcc_vp8_clip(row[-1] + top[x] - top[-1]);
  }
  if (mode != VP8_B_DC) return;
  int sum = 0, shift = size == 16 ? 3 : 2;
  for (int i = 0; i < size; ++i) sum += (has_top ? top[i] : 0) + (has_left ? d[i * MLCC_VP8_WS - 1] : 0);
  int v = has_top && has_left   ? (sum + size) >> (shift + 2)
          : has_top || has_left ? (sum + size / 2) >> (shift + 1)
                                : 128;
  for (int y = 0; y < size; ++y) memset(d + y * MLCC_VP8_WS, v, (size_t)size);
}

/* A 4x4 subblock (RFC 6386 section 12.3): edge samples I..L to the left (top down), X above-left, A..H
 * above and above-right. */
static void mlcc_vp8_predict4(uint8_t *d, int mode) {
  const uint8_t *t = d - MLCC_VP8_WS;
  int X = t[-1], A = t[0], B = t[1], C = t[2], D = t[3], E = t[4], F = t[5], G = t[6], H = t[7];
  int I = d[-1], J = d[MLCC_VP8_WS - 1], K = d[2 * MLCC_VP8_WS - 1], L = d[3 * MLCC_VP8_WS - 1];
#define P(x, y) d[(x) + (y) * MLCC_VP8_WS]
#define A3(a, b, c) (uint8_t)(((a) + 2 * (b) + (c) + 2) >> 2)
#define A2(a, b) (uint8_t)(((a) + (b) + 1) >> 1)
  const int edge[9] = {L, K, J, I, X, A, B, C, D}; /* along the left and top, for the down-right mode */
  const int left[4] = {I, J, K, L};
  switch (mode) {
  case VP8_B_DC: {
    int v = (A + B + C + D + I + J + K + L + 4) >> 3;
    for (int y = 0; y < 4; ++y) memset(&P(0, y), v, 4);
    break;
  }
  case VP8_B_TM:
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) P(x, y) = mlcc_vp8_clip(left[y] + t[x] - X);
    break;
  case VP8_B_VE:
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) P(x, y) = A3(t[x - 1], t[x], t[x + 1]);
    break;
  case VP8_B_HE: {
    const int v[6] = {X, I, J, K, L, L};
    for (int y = 0; y < 4; ++y) memset(&P(0, y), A3(v[y], v[y + 1], v[y + 2]), 4);
    break;
  }
  case VP8_B_RD:
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) P(x, y) = A3(edge[3 + x - y], edge[4 + x - y], edge[5 + x - y]);
    break;
  case VP8_B_LD:
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) P(x, y) = x + y < 6 ? A3(t[x + y], t[x + y + 1], t[x + y + 2]) : A3(G, H, H);
    break;
  case VP8_B_VR:
    P(0, 0) = P(1, 2) = A2(X, A), P(1, 0) = P(2, 2) = A2(A, B), P(2, 0) = P(3, 2) = A2(B, C), P(3, 0) = A2(C, D);
    P(0, 3) = A3(K, J, I), P(0, 2) = A3(J, I, X), P(0, 1) = P(1, 3) = A3(I, X, A);
    P(1, 1) = P(2, 3) = A3(X, A, B), P(2, 1) = P(3, 3) = A3(A, B, C), P(3, 1) = A3(B, C, D);
    break;
  case VP8_B_VL:
    P(0, 0) = A2(A, B), P(1, 0) = P(0, 2) = A2(B, C), P(2, 0) = P(1, 2) = A2(C, D), P(3, 0) = P(2, 2) = A2(D, E);
    P(0, 1) = A3(A, B, C), P(1, 1) = P(0, 3) = A3(B, C, D), P(2, 1) = P(1, 3) = A3(C, D, E);
    P(3, 1) = P(2, 3) = A3(D, E, F), P(3, 2) = A3(E, F, G), P(3, 3) = A3(F, G, H);
    break;
  case VP8_B_HD:
    P(0, 0) = P(2, 1) = A2(I, X), P(0, 1) = P(2, 2) = A2(J, I), P(0, 2) = P(2, 3) = A2(K, J), P(0, 3) = A2(L, K);
    P(3, 0) = A3(A, B, C), P(2, 0) = A3(X, A, B), P(1, 0) = P(3, 1) = A3(I, X, A);
    P(1, 1) = P(3, 2) = A3(J, I, X), P(1, 2) = P(3, 3) = A3(K, J, I), P(1, 3) = A3(L, K, J);
    break;
  default: /* VP8_B_HU */
    P(0, 0) = A2(I, J), P(2, 0) = P(0, 1) = A2(J, K), P(2, 1) = P(0, 2) = A2(K, L), P(1, 0) = A3(I, J, K);
    P(3, 0) = P(1, 1) = A3(J, K, L), P(3, 1) = P(1, 2) = A3(K, L, L);
    P(3, 2) = P(2, 2) = P(0, 3) = P(1, 3) = P(2, 3) = P(3, 3) = (uint8_t)L;
    break;
  }
#undef P
#undef A3
#undef A2
}

/* Fills a work area's edges for the size x size block at plane p (stride s): the row above (size + extra
 * samples, and the one above-left), the column to the left; 127 above the frame, 129 left of it. */
static void mlcc_vp8_edges(uint8_t *w, const uint8_t *p, int64_t s, int size, int extra, int64_t mx, int64_t my,
                           int last_col) {
  uint8_t *top = w - MLCC_VP8_WS;
  if (my == 0) {
    memset(top - 1, 127, (size_t)(size + extra + 1));
  } else {
    memcpy(top, p - s, (size_t)size);
    top[-1] = mx == 0 ? 129 : p[-s - 1];
    for (int i = 0; i < extra; ++i) top[size + i] = last_col ? p[-s + size - 1] : p[-s + size + i];
  }
  for (int y = 0; y < size; ++y) w[y * MLCC_VP8_WS - 1] = mx == 0 ? 129 : p[y * s - 1];
}

static void mlcc_vp8_reconstruct(mlcc_vp8 *d, int64_t mx, int64_t my, int i4, const int *modes, int uvmode,
                                 const int16_t *c) {
  uint8_t work[17 * MLCC_VP8_WS];
  uint8_t *w = work + MLCC_VP8_WS + 8;
  uint8_t *py = d->y + my * 16 * d->ys + mx * 16;
  mlcc_vp8_edges(w, py, d->ys, 16, 4, mx, my, mx == d->mbw - 1);
  if (i4) {
    for (int r = 3; r < 15; r += 4) memcpy(w + r * MLCC_VP8_WS + 16, w - MLCC_VP8_WS + 16, 4); /* above-right */
    for (int n = 0; n < 16; ++n) {
      uint8_t *b = w + (n >> 2) * 4 * MLCC_VP8_WS + (n & 3) * 4;
      mlcc_vp8_predict4(b, modes[n]);
      mlcc_vp8_idct_add(c + 16 * n, b, MLCC_VP8_WS);
    }
  } else {
    mlcc_vp8_predict(w, 16, modes[0], my > 0, mx > 0);
    for (int n = 0; n < 16; ++n)
      if (mlcc_vp8_any(c + 16 * n))
        mlcc_vp8_idct_add(c + 16 * n, w + (n >> 2) * 4 * MLCC_VP8_WS + (n & 3) * 4, MLCC_VP8_WS);
  }
  for (int y = 0; y < 16; ++y) memcpy(py + y * d->ys, w + y * MLCC_VP8_WS, 16);
  for (int k = 0; k < 2; ++k) {
    uint8_t *pc = (k ? d->v : d->u) + my * 8 * d->uvs + mx * 8;
    mlcc_vp8_edges(w, pc, d->uvs, 8, 0, mx, my, 0);
    mlcc_vp8_predict(w, 8, uvmode, my > 0, mx > 0);
    for (int n = 0; n < 4; ++n) {
      const int16_t *cc = c + 256 + 64 * k + 16 * n;
      if (mlcc_vp8_any(cc)) mlcc_vp8_idct_add(cc, w + (n >> 1) * 4 * MLCC_VP8_WS + (n & 1) * 4, MLCC_VP8_WS);
    }
    for (int y = 0; y < 8; ++y) memcpy(pc + y * d->uvs, w + y * MLCC_VP8_WS, 8);
  }
}

/* ---- loop filter (RFC 6386 section 15; libwebp's formulation): p points at the first sample past the edge,
 * `s` steps across it ---- */

static int mlcc_vp8_c128(int v) { return v < -128 ? -128 : v > 127 ? 127 : v; }

static void mlcc_vp8_common(uint8_t *p, int64_t s, int outer) { /* adjusts the two samples at the edge */
  int p1 = p[-2 * s], p0 = p[-s], q0 = p[0], q1 = p[s];
  int a = 3 * (q0 - p0) + (outer ? mlcc_vp8_c128(p1 - q1) : 0);
  int a1 = mlcc_vp8_c128(a + 4) >> 3, a2 = mlcc_vp8_c128(a + 3) >> 3;
  p[-s] = mlcc_vp8_clip(p0 + a2), p[0] = mlcc_vp8_clip(q0 - a1);
  if (!outer) { /* the subblock filter's second pair */
    int a3 = (a1 + 1) >> 1;
    p[-2 * s] = mlcc_vp8_clip(p1 + a3), p[s] = mlcc_vp8_clip(q1 - a3);
  }
}

static void mlcc_vp8_mbfilter(uint8_t *p, int64_t s) { /* a macroblock edge's three samples on each side */
  int p2 = p[-3 * s], p1 = p[-2 * s], p0 = p[-s], q0 = p[0], q1 = p[s], q2 = p[2 * s];
  int a = mlcc_vp8_c128(3 * (q0 - p0) + mlcc_vp8_c128(p1 - q1));
  int a1 = (27 * a + 63) >> 7, a2 = (18 * a + 63) >> 7, a3 = (9 * a + 63) >> 7;
  p[-3 * s] = mlcc_vp8_clip(p2 + a3), p[-2 * s] = mlcc_vp8_clip(p1 + a2), p[-s] = mlcc_vp8_clip(p0 + a1);
  p[0] = mlcc_vp8_clip(q0 - a1), p[s] = mlcc_vp8_clip(q1 - a2), p[2 * s] = mlcc_vp8_clip(q2 - a3);
}

static int mlcc_vp8_diff(int a, int b) { return a > b ? a - b : b - a; }

/* Filters `n` positions along an edge (`along` apart). simple: the simple filter; else mb picks the
 * macroblock-edge filter over the subblock one. */
static void mlcc_vp8_edge(uint8_t *p, int64_t s, int64_t along, int n, int limit, int ilevel, int hev, int simple,
                          int mb) {
  for (int i = 0; i < n; ++i, p += along) {
    int p3 = p[-4 * s], p2 = p[-3 * s], p1 = p[-2 * s], p0 = p[-s], q0 = p[0], q1 = p[s], q2 = p[2 * s], q3 = p[3 * s];
    if (4 * mlcc_vp8_diff(p0, q0) + mlcc_vp8_diff(p1, q1) > 2 * limit + 1) continue;
    if (simple) {
      mlcc_vp8_common(p, s, 1);
      continue;
    }
    if (mlcc_vp8_diff(p3, p2) > ilevel || mlcc_vp8_diff(p2, p1) > ilevel || mlcc_vp8_diff(p1, p0) > ilevel ||
        mlcc_vp8_diff(q3, q2) > ilevel || mlcc_vp8_diff(q2, q1) > ilevel || mlcc_vp8_diff(q1, q0) > ilevel)
      continue;
    if (mlcc_vp8_diff(p1, p0) > hev || mlcc_vp8_diff(q1, q0) > hev) mlcc_vp8_common(p, s, 1);
    else if (mb) mlcc_vp8_mbfilter(p, s);
    else mlcc_vp8_common(p, s, 0);
  }
}

static void mlcc_vp8_filter(mlcc_vp8 *d, int64_t mx, int64_t my) {
  int info = d->mb_info[my * d->mbw + mx], seg = info & 3, i4 = info >> 2 & 1, inner = info >> 3 & 1;
  int limit = d->limit[seg][i4], il = d->ilevel[seg][i4], hev = d->hev[seg][i4], simple = d->filter_type == 1;
  if (limit == 0) return;
  int64_t ys = d->ys, cs = d->uvs;
  uint8_t *y = d->y + my * 16 * ys + mx * 16, *u = d->u + my * 8 * cs + mx * 8, *v = d->v + my * 8 * cs + mx * 8;
  for (int dir = 0; dir < 2; ++dir) { /* vertical edges (filtered across, left to right), then horizontal */
    int64_t sy = dir ? ys : 1, ay = dir ? 1 : ys, sc = dir ? cs : 1, ac = dir ? 1 : cs;
    if (dir ? my > 0 : mx > 0) {
      mlcc_vp8_edge(y, sy, ay, 16, limit + 4, il, hev, simple, 1);
      for (int k = 0; k < 2 && !simple; ++k) mlcc_vp8_edge(k ? v : u, sc, ac, 8, limit + 4, il, hev, 0, 1);
    }
    if (inner) {
      for (int k = 4; k < 16; k += 4) mlcc_vp8_edge(y + k * sy, sy, ay, 16, limit, il, hev, simple, 0);
      for (int k = 0; k < 2 && !simple; ++k) mlcc_vp8_edge((k ? v : u) + 4 * sc, sc, ac, 8, limit, il, hev, 0, 0);
    }
  }
}

/* ---- output: libwebp's fancy upsampling and YUV to RGB ---- */

static uint8_t mlcc_vp8_rgb8(int v) { return (uint8_t)((v & ~16383) == 0 ? v >> 6 : v < 0 ? 0 : 255); }

static void mlcc_vp8_rgb(int y, int u, int v, uint8_t *rgb) {
  int yy = (y * 19077) >> 8;
  rgb[0] = mlcc_vp8_rgb8(yy + ((v * 26149) >> 8) - 14234);
  rgb[1] = mlcc_vp8_rgb8(yy - ((u * 6419) >> 8) - ((v * 13320) >> 8) + 8708);
  rgb[2] = mlcc_vp8_rgb8(yy + ((u * 33050) >> 8) - 17685);
}

/* One output row of w pixels from its luma row and the nearer (n) and farther (f) chroma rows: each pixel's
 * chroma is about (9 nearest + 3 + 3 + 1 farthest) / 16 of the four samples around it, computed in two
 * roundings as libwebp's UpsampleRgbLinePair does; the first pixel, and an even width's last, take 3/4 and 1/4. */
static void mlcc_vp8_row(const uint8_t *y, const uint8_t *nu, const uint8_t *nv, const uint8_t *fu, const uint8_t *fv,
                         int64_t w, uint8_t *rgb) {
  mlcc_vp8_rgb(y[0], (3 * nu[0] + fu[0] + 2) >> 2, (3 * nv[0] + fv[0] + 2) >> 2, rgb);
  int64_t k = 1;
  /* a: nearer row, left sample; b: nearer, right; c: farther, left; d: farther, right */
#define MLCC_VP8_LEFT(a, b, c, d) ((((a + b + c + d + 8 + 2 * (b + c)) >> 3) + a) >> 1)
#define MLCC_VP8_RIGHT(a, b, c, d) ((((a + b + c + d + 8 + 2 * (a + d)) >> 3) + b) >> 1)
  for (; k <= (w - 1) >> 1; ++k) { /* pixels 2k - 1 and 2k, between chroma samples k - 1 and k */
    int a = nu[k - 1], b = nu[k], c = fu[k - 1], d = fu[k], e = nv[k - 1], f = nv[k], g = fv[k - 1], h = fv[k];
    mlcc_vp8_rgb(y[2 * k - 1], MLCC_VP8_LEFT(a, b, c, d), MLCC_VP8_LEFT(e, f, g, h), rgb + 6 * k - 3);
    mlcc_vp8_rgb(y[2 * k], MLCC_VP8_RIGHT(a, b, c, d), MLCC_VP8_RIGHT(e, f, g, h), rgb + 6 * k);
  }
#undef MLCC_VP8_LEFT
#undef MLCC_VP8_RIGHT
  if (!(w & 1)) {
    int u = (3 * nu[k - 1] + fu[k - 1] + 2) >> 2, v = (3 * nv[k - 1] + fv[k - 1] + 2) >> 2;
    mlcc_vp8_rgb(y[w - 1], u, v, rgb + 3 * (w - 1));
  }
}

static int mlcc_vp8_frame(mlcc_vp8 *d, mlcc_img *img, const uint8_t *s, int64_t n) {
  if (n < 10) return MLCC_ERR_BAD_DATA;
  uint32_t tag = s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16;
  if (tag & 1) return MLCC_ERR_BAD_DATA; /* an inter frame cannot stand alone */
  if ((tag >> 1 & 7) > 3) return MLCC_ERR_BAD_DATA; /* no such profile */
  if (!(tag >> 4 & 1)) return MLCC_ERR_UNSUPPORTED_DATA; /* a frame not to be shown */
  if (s[3] != 0x9d || s[4] != 0x01 || s[5] != 0x2a) return MLCC_ERR_BAD_DATA;
  int64_t first = tag >> 5;
  d->w = mlcc_le16(s + 6) & 0x3fff, d->h = mlcc_le16(s + 8) & 0x3fff; /* the scaling bits are not applied */
  int st = mlcc_img_begin(img, d->w, d->h);
  if (st != MLCC_OK) return st;
  if (first > n - 10) return MLCC_ERR_BAD_DATA;
  mlcc_vp8bits_init(&d->hdr, s + 10, first);
  st = mlcc_vp8_header(d, s + 10 + first, n - 10 - first);
  if (st != MLCC_OK) return st;
  d->mbw = (d->w + 15) >> 4, d->mbh = (d->h + 15) >> 4;
  d->ys = d->mbw * 16, d->uvs = d->mbw * 8;
  d->y = malloc((size_t)(d->ys * d->mbh * 16));
  d->u = malloc((size_t)(d->uvs * d->mbh * 8));
  d->v = malloc((size_t)(d->uvs * d->mbh * 8));
  d->top_modes = calloc((size_t)d->mbw, 4);
  d->top_nz = calloc((size_t)d->mbw, 9);
  d->mb_info = malloc((size_t)(d->mbw * d->mbh));
  if (!d->y || !d->u || !d->v || !d->top_modes || !d->top_nz || !d->mb_info) return MLCC_ERR_OUT_OF_MEMORY;
  int16_t c[384];
  int modes[16], uvmode;
  for (int64_t my = 0; my < d->mbh; ++my) {
    mlcc_vp8bits *tok = &d->part[my & (d->nparts - 1)];
    memset(d->left_modes, VP8_B_DC, 4), memset(d->left_nz, 0, 9);
    for (int64_t mx = 0; mx < d->mbw; ++mx) {
      int info = mlcc_vp8_macroblock(d, mx, tok, modes, &uvmode, c);
      d->mb_info[my * d->mbw + mx] = (uint8_t)info;
      mlcc_vp8_reconstruct(d, mx, my, info >> 2 & 1, modes, uvmode, c);
    }
    if (d->hdr.eof || tok->eof) return MLCC_ERR_BAD_DATA; /* libwebp: "premature end of partition" */
  }
  if (d->filter_type)
    for (int64_t my = 0; my < d->mbh; ++my)
      for (int64_t mx = 0; mx < d->mbw; ++mx) mlcc_vp8_filter(d, mx, my);
  uint8_t *rgb = malloc((size_t)(3 * d->w));
  if (!rgb) return MLCC_ERR_OUT_OF_MEMORY;
  for (int64_t r = 0; r < d->h; ++r) {
    int64_t nr, fr; /* nearer and farther chroma rows */
    if (r == 0) nr = fr = 0;
    else if (r & 1) nr = (r - 1) >> 1, fr = r == d->h - 1 ? nr : (r + 1) >> 1;
    else nr = r >> 1, fr = nr - 1;
    mlcc_vp8_row(d->y + r * d->ys, d->u + nr * d->uvs, d->v + nr * d->uvs, d->u + fr * d->uvs, d->v + fr * d->uvs,
                 d->w, rgb);
    mlcc_img_row(img, r, rgb);
  }
  free(rgb);
  return MLCC_OK;
}

#include "mlcc_vp8l.h"

/* The first VP8 or VP8L chunk among the chunks s[0 .. n) (ALPH and others skipped), decoded into img; its size
 * must be w x h where those are given (nonzero). */
static int mlcc_webp_image(mlcc_img *img, const uint8_t *s, int64_t n, int64_t w, int64_t h) {
  for (int64_t at = 0; at + 8 <= n;) {
    int64_t size = mlcc_le32(s + at + 4), fw = 0, fh = 0;
    if (size > n - at - 8) return MLCC_ERR_BAD_DATA;
    const uint8_t *data = s + at + 8;
    int st = -1;
    if (!memcmp(s + at, "VP8 ", 4)) {
      mlcc_vp8 d;
      memset(&d, 0, sizeof d);
      st = mlcc_vp8_frame(&d, img, data, size);
      fw = d.w, fh = d.h;
      free(d.y), free(d.u), free(d.v), free(d.top_modes), free(d.top_nz), free(d.mb_info);
    } else if (!memcmp(s + at, "VP8L", 4)) {
      st = mlcc_vp8l(img, data, size, &fw, &fh);
    }
    if (st >= 0) return st == MLCC_OK && w && (w != fw || h != fh) ? MLCC_ERR_BAD_DATA : st;
    at += 8 + size + (size & 1);
  }
  return MLCC_ERR_BAD_DATA;
}

static int64_t mlcc_le24(const uint8_t *p) { return p[0] | p[1] << 8 | (int64_t)p[2] << 16; }

/* A RIFF WEBP file: its VP8 or VP8L chunk (directly, or after VP8X and the chunks it allows) decoded into img;
 * of an animation, the first frame on a transparent (here black) canvas, as WebPAnimDecoder gives it. */
static int mlcc_webp(mlcc_img *img, const uint8_t *s, int64_t n) {
  if (n < 20) return MLCC_ERR_BAD_DATA;
  int64_t end = (int64_t)mlcc_le32(s + 4) + 8;
  if (end > n) end = n; /* a truncated file: its chunks are checked against what is there */
  if (memcmp(s + 12, "VP8X", 4)) return mlcc_webp_image(img, s + 12, end - 12, 0, 0);
  int64_t size = mlcc_le32(s + 16);
  if (size < 10 || size > end - 20) return MLCC_ERR_BAD_DATA;
  int64_t cw = 1 + mlcc_le24(s + 24), ch = 1 + mlcc_le24(s + 27), at = 20 + size + (size & 1);
  if (!(s[20] & 2)) return mlcc_webp_image(img, s + at, end - at, cw, ch);
  for (; at + 8 <= end; at += 8 + size + (size & 1)) { /* an animation: its first ANMF chunk */
    size = mlcc_le32(s + at + 4);
    if (size > end - at - 8) return MLCC_ERR_BAD_DATA;
    if (memcmp(s + at, "ANMF", 4)) continue;
    const uint8_t *f = s + at + 8;
    if (size < 16) return MLCC_ERR_BAD_DATA;
    int64_t fx = 2 * mlcc_le24(f), fy = 2 * mlcc_le24(f + 3), fw = 1 + mlcc_le24(f + 6), fh = 1 + mlcc_le24(f + 9);
    if (fx + fw > cw || fy + fh > ch) return MLCC_ERR_BAD_DATA;
    int st = mlcc_img_begin(img, cw, ch);
    if (st != MLCC_OK) return st;
    uint8_t *frame = malloc((size_t)(fw * fh * 3)), *row = calloc((size_t)cw, 3);
    mlcc_img sub = {frame, fh, fw, MLCC_IMAGE_RGB, 0, 0};
    st = frame && row ? mlcc_webp_image(&sub, f + 16, size - 16, fw, fh) : MLCC_ERR_OUT_OF_MEMORY;
    for (int64_t y = 0; y < ch && st == MLCC_OK; ++y) {
      int inside = y >= fy && y < fy + fh;
      memset(row, 0, (size_t)(cw * 3));
      if (inside) memcpy(row + 3 * fx, frame + 3 * (y - fy) * fw, (size_t)(3 * fw));
      mlcc_img_row(img, y, row);
    }
    free(frame), free(row);
    return st;
  }
  return MLCC_ERR_BAD_DATA;
}

#endif
