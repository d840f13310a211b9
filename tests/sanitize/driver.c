/* Drives a generated model through its C API for the sanitizer and valgrind runs. Built with -DMODEL=prefix.
 *   driver IN.bin OUT.bin WEIGHTS.bin
 * Runs two instances on the inputs in IN.bin (every input's bytes, in order), checks they agree, writes the
 * outputs to OUT.bin, and exercises the error paths: NULL arguments, a missing weights file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define API(name) CAT(MODEL, name)

static unsigned char *read_all(const char *path, long *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)*size + 1);
  if (fread(buf, 1, (size_t)*size, f) != (size_t)*size) *size = -1;
  fclose(f);
  return buf;
}

int main(int argc, char **argv) {
  if (argc != 4) return 64;
  long in_size = 0;
  unsigned char *in = read_all(argv[1], &in_size);
  if (!in) return 65;
  API(model) *a = NULL, *b = NULL;
  if (API(create_from_file)(&a, argv[3]) != MLCC_OK) return 66;
  if (API(create_from_file)(&b, argv[3]) != MLCC_OK) return 66;

  int n_in = API(num_inputs)(), n_out = API(num_outputs)();
  const void **inputs = calloc((size_t)n_in + 1, sizeof *inputs);
  void **out_a = calloc((size_t)n_out + 1, sizeof *out_a), **out_b = calloc((size_t)n_out + 1, sizeof *out_b);
  long offset = 0;
  for (int i = 0; i < n_in; ++i) {
    inputs[i] = in + offset;
    offset += API(input_info)(i)->nbytes;
  }
  if (offset != in_size) return 67;
  for (int i = 0; i < n_out; ++i) {
    out_a[i] = malloc((size_t)API(output_info)(i)->nbytes + 1);
    out_b[i] = malloc((size_t)API(output_info)(i)->nbytes + 1);
  }
  if (API(run)(a, inputs, out_a) != MLCC_OK || API(run)(b, inputs, out_b) != MLCC_OK) return 68;
  if (API(run)(a, inputs, out_a) != MLCC_OK) return 68; /* a second run reuses the arena */
  FILE *f = fopen(argv[2], "wb");
  for (int i = 0; i < n_out; ++i) {
    size_t nbytes = (size_t)API(output_info)(i)->nbytes;
    if (memcmp(out_a[i], out_b[i], nbytes) != 0) return 69;
    fwrite(out_a[i], 1, nbytes, f);
  }
  fclose(f);

  /* error paths: statuses, never undefined behaviour */
  API(model) *none = NULL;
  if (API(run)(NULL, inputs, out_a) != MLCC_ERR_NULL_ARGUMENT) return 70;
  if (API(run)(a, NULL, NULL) != MLCC_ERR_NULL_ARGUMENT) return 70;
  if (API(create_from_file)(&none, "/nonexistent/weights.bin") != MLCC_ERR_WEIGHTS_FILE || none) return 71;
  if (API(create_from_file)(NULL, argv[3]) != MLCC_ERR_NULL_ARGUMENT) return 71;
  if (API(input_info)(-1) || API(input_info)(n_in) || API(output_info)(n_out)) return 72;
  if (!API(status_message)(12345)) return 73;
  API(destroy)(NULL);

  for (int i = 0; i < n_out; ++i) {
    free(out_a[i]);
    free(out_b[i]);
  }
  free(out_a);
  free(out_b);
  free(inputs);
  free(in);
  API(destroy)(a);
  API(destroy)(b);
  return 0;
}
