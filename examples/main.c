/* A plain C program that runs a model compiled by mlcc, with no Python: link it with libdemo.a.
 *
 *   mlcc examples/demo.onnx --input-shape image=1,3,32,32 --name demo -o out/demo
 *   cc -O2 -I out/demo examples/main.c out/demo/libdemo.a -lm -pthread -o out/demo_main
 *   out/demo_main [INPUT.bin [OUTPUT.bin]]
 *
 * INPUT.bin holds the raw bytes of every input, one after another; without it the inputs are filled
 * with a fixed ramp. The outputs' first values are printed, and written raw to OUTPUT.bin if given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static int fail(const char *what, int status) {
  fprintf(stderr, "%s: %s\n", what, demo_status_message(status));
  return 1;
}

int main(int argc, char **argv) {
  demo_model *model = NULL;
  int status = demo_create(&model);
  if (status != MLCC_OK) return fail("create", status);

  int n_in = demo_num_inputs(), n_out = demo_num_outputs();
  const void **inputs = calloc((size_t)n_in, sizeof *inputs);
  void **outputs = calloc((size_t)n_out, sizeof *outputs);
  FILE *in = argc > 1 ? fopen(argv[1], "rb") : NULL;
  if (argc > 1 && !in) {
    perror(argv[1]);
    return 1;
  }
  for (int i = 0; i < n_in; ++i) {
    const mlcc_tensor_info *info = demo_input_info(i);
    unsigned char *buf = malloc((size_t)info->nbytes + 1);
    if (in) {
      if (fread(buf, 1, (size_t)info->nbytes, in) != (size_t)info->nbytes) {
        fprintf(stderr, "%s: too short for input %s\n", argv[1], info->name);
        return 1;
      }
    } else if (info->dtype == MLCC_FLOAT32) {
      float *f = (float *)buf;
      for (int64_t k = 0; k < info->nbytes / 4; ++k) f[k] = (float)(k % 97) / 97.0f;
    } else {
      memset(buf, 0, (size_t)info->nbytes);
    }
    inputs[i] = buf;
  }
  if (in) fclose(in);
  for (int i = 0; i < n_out; ++i) outputs[i] = malloc((size_t)demo_output_info(i)->nbytes + 1);

  status = demo_run(model, inputs, outputs);
  if (status != MLCC_OK) return fail("run", status);

  FILE *out = argc > 2 ? fopen(argv[2], "wb") : NULL;
  for (int i = 0; i < n_out; ++i) {
    const mlcc_tensor_info *info = demo_output_info(i);
    printf("%s:", info->name);
    if (info->dtype == MLCC_FLOAT32) {
      const float *f = (const float *)outputs[i];
      for (int64_t k = 0; k < info->nbytes / 4 && k < 10; ++k) printf(" %.6f", f[k]);
    }
    printf("\n");
    if (out) fwrite(outputs[i], 1, (size_t)info->nbytes, out);
  }
  if (out) fclose(out);

  for (int i = 0; i < n_in; ++i) free((void *)inputs[i]);
  for (int i = 0; i < n_out; ++i) free(outputs[i]);
  free(inputs);
  free(outputs);
  demo_destroy(model);
  return 0;
}
