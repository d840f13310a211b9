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
