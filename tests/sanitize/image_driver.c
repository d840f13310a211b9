/* Decodes each file named on the command line with runtime_c/mlcc_image.h into a 512 x 512 bound, in every
 * pixel format, and prints one line per file: the status and the decoded height and width. Built with the
 * sanitizers by test_image_decoders.py: any out-of-bounds access or undefined behaviour aborts the run. */
#include <stdio.h>

#include "mlcc_image.h"

#define SIDE 512

int main(int argc, char **argv) {
  static uint8_t data[1 << 20], out[SIDE * SIDE * 3];
  for (int i = 1; i < argc; ++i) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) return 2;
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    uint8_t *copy = malloc(n ? n : 1); /* exactly n bytes: a read past the end is caught */
    if (!copy) return 3;
    memcpy(copy, data, n);
    for (int mode = MLCC_IMAGE_RGB; mode <= MLCC_IMAGE_GRAY; ++mode) {
      mlcc_img img = {out, SIDE, SIDE, mode, 0, 0};
      int status = mlcc_image_decode(&img, copy, (int64_t)n);
      if (mode == MLCC_IMAGE_RGB) printf("%d %lld %lld\n", status, (long long)img.h, (long long)img.w);
    }
    free(copy);
  }
  return 0;
}
