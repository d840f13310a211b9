"""runtime_c/mlcc_pool.h mlcc_split: how a tiled kernel's columns (strips) and rows (panels) are cut into tasks
for the pool's threads, compiled into a small C program and checked case by case."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

RUNTIME = Path(__file__).parents[2] / "runtime_c"
PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include "mlcc_pool.h"
int main(int argc, char **argv) {
  for (int i = 1; i + 6 < argc + 1; i += 6) {
    int threads = atoi(argv[i]);
    int64_t outer = atoll(argv[i + 1]), strips = atoll(argv[i + 2]), panels = atoll(argv[i + 3]);
    int64_t blocks = atoll(argv[i + 4]), nc = atoll(argv[i + 5]) * 32, chunks = 1;
    mlcc_split(threads, outer, strips, 32, panels, &blocks, &nc, &chunks);
    printf("%lld %lld %lld\n", (long long)blocks, (long long)(nc / 32), (long long)chunks);
  }
  return 0;
}
"""

# (threads, outer, strips, panels, cache-sized blocks, strips per block) -> (blocks, strips per block, row chunks)
CASES = {
    # 3 strips to 2 threads: by columns 2 + 1, so the rows are cut (mobilenet_v2's 576 -> 96 at 14x14)
    "three_strips": ((2, 1, 3, 25, 1, 3), (1, 3, 2)),
    # 7 strips (96 -> 576 at 14x14, channel-major): 4 + 3 by columns, 36 + 36 panels by rows
    "seven_strips": ((2, 1, 7, 72, 1, 7), (1, 7, 2)),
    # columns that divide evenly stay the only cut (no patches packed twice)
    "even_columns": ((2, 1, 98, 8, 4, 25), (4, 25, 1)),
    "three_threads": ((3, 1, 98, 8, 4, 25), (6, 17, 1)),
    # two images for two threads: one task each
    "images": ((2, 2, 10, 4, 1, 10), (1, 10, 1)),
    # one thread: the cache-sized split as it came
    "one_thread": ((1, 1, 7, 72, 1, 7), (1, 7, 1)),
    # a single tile: nothing to cut
    "one_tile": ((2, 1, 1, 1, 1, 1), (1, 1, 1)),
}


@pytest.fixture(scope="module")
def split_program(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("split")
    (d / "split.c").write_text(PROGRAM)
    exe = d / "split"
    cmd = ["cc", "-std=c11", "-O2", "-Wall", "-Werror", "-pthread", f"-I{RUNTIME}", str(d / "split.c"), "-o", str(exe)]
    subprocess.run(cmd, check=True)
    return exe


def test_mlcc_split_balances_threads_with_the_fewest_row_chunks(split_program):
    args = [str(v) for case, _ in CASES.values() for v in case]
    lines = subprocess.run([str(split_program), *args], check=True, capture_output=True, text=True).stdout.split("\n")
    got = {name: tuple(int(v) for v in line.split()) for name, line in zip(CASES, lines)}
    assert got == {name: want for name, (_, want) in CASES.items()}


SHARES = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include "mlcc_pool.h"
/* every task records its worker; each worker's first task waits (up to 2 s) until all threads have started
   one, so that no thread takes another's share before that thread arrives */
typedef struct { atomic_int arrived; int threads; int ran[64]; int first[8]; atomic_int count[64]; } state;
static void task(void *ctx, int64_t t, int worker) {
  state *s = (state *)ctx;
  if (s->first[worker] < 0) {
    s->first[worker] = (int)t;
    atomic_fetch_add(&s->arrived, 1);
    const int64_t until = mlcc_now_ns() + 2000000000;
    while (atomic_load(&s->arrived) < s->threads && mlcc_now_ns() < until) mlcc_cpu_relax();
  }
  s->ran[t] = worker;
  atomic_fetch_add(&s->count[t], 1);
}
int main(int argc, char **argv) {
  const int threads = atoi(argv[1]), tasks = atoi(argv[2]);
  mlcc_pool *p = mlcc_pool_create(threads);
  for (int region = 0; region < 3; ++region) { /* the shares are reset for every region */
    static state s;
    atomic_init(&s.arrived, 0);
    s.threads = threads;
    for (int w = 0; w < 8; ++w) s.first[w] = -1;
    for (int t = 0; t < 64; ++t) atomic_init(&s.count[t], 0);
    mlcc_pool_run(p, tasks, task, &s);
    for (int w = 0; w < threads; ++w) printf("%d ", s.first[w]);
    for (int t = 0; t < tasks; ++t) printf("%d ", atomic_load(&s.count[t]));
    printf("\n");
  }
  mlcc_pool_destroy(p);
  return 0;
}
"""


@pytest.mark.parametrize(("threads", "tasks"), [(2, 2), (2, 9), (3, 10), (4, 64)])
def test_each_thread_starts_on_its_own_contiguous_share(threads, tasks, tmp_path):
    """mlcc_pool_run: thread w first takes task w * tasks / threads (the start of its contiguous share: so the
    same thread runs the same part of every kernel); every task runs exactly once, in every region."""
    (tmp_path / "shares.c").write_text(SHARES)
    exe = tmp_path / "shares"
    cmd = ["cc", "-std=c11", "-O2", "-Wall", "-Werror", "-pthread", f"-I{RUNTIME}", str(tmp_path / "shares.c")]
    subprocess.run([*cmd, "-o", str(exe)], check=True)
    out = subprocess.run([str(exe), str(threads), str(tasks)], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        values = [int(v) for v in line.split()]
        assert values[:threads] == [w * tasks // threads for w in range(threads)]
        assert values[threads:] == [1] * tasks
