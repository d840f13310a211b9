"""runtime_c/mlcc_runtime.c mlcc_aligned_alloc: zeroed, aligned blocks; blocks of 2 MiB and more aligned to 2 MiB and
asked for in transparent huge pages (madvise), checked in a small C program built as model.c is (-std=c11)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).parents[2] / "runtime_c"
PROGRAM = r"""
#define _DEFAULT_SOURCE 1 /* as model.c */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "mlcc_runtime.c"
/* the THPeligible line of the mapping that holds p (Linux), or -1 */
static int thp_eligible(const void *p) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  int inside = 0, eligible = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
      inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    else if (inside && sscanf(line, "THPeligible: %d", &eligible) == 1)
      break;
  }
  fclose(f);
  return eligible;
}
int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    uint64_t bytes = strtoull(argv[i], NULL, 10);
    unsigned char *p = (unsigned char *)mlcc_aligned_alloc(bytes);
    if (!p) return 1;
    uint64_t nonzero = 0;
    for (uint64_t j = 0; j < bytes; ++j) nonzero += p[j] != 0;
    printf("%llu %llu %llu %d\n", (unsigned long long)bytes, (unsigned long long)((uintptr_t)p % (2u << 20)),
           (unsigned long long)nonzero, thp_eligible(p));
    memset(p, 0xff, bytes); /* writable to the end */
    mlcc_aligned_free(p);
  }
  return 0;
}
"""
SIZES = [1, 100, 64 * 1024, (2 << 20) - 64, 2 << 20, (5 << 20) + 3]


@pytest.fixture(scope="module")
def blocks(tmp_path_factory) -> dict[int, tuple[int, int, int]]:
    d = tmp_path_factory.mktemp("alloc")
    (d / "alloc.c").write_text(PROGRAM)
    exe = d / "alloc"
    cmd = ["cc", "-std=c11", "-O2", "-Wall", "-Werror", f"-I{RUNTIME}", str(d / "alloc.c"), "-o", str(exe)]
    subprocess.run(cmd, check=True)
    out = subprocess.run([str(exe), *map(str, SIZES)], check=True, capture_output=True, text=True).stdout
    rows = [tuple(int(v) for v in line.split()) for line in out.splitlines()]
    return {row[0]: row[1:] for row in rows}


def test_blocks_are_zeroed_and_aligned(blocks):
    assert sorted(blocks) == sorted(SIZES)
    for size, (offset, nonzero, _) in blocks.items():
        assert nonzero == 0, size
        assert offset % 64 == 0, size
        if size >= 2 << 20 and sys.platform.startswith("linux"):
            assert offset == 0, f"{size} bytes at {offset} past a 2 MiB boundary"


def _thp_mode() -> str | None:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return None
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m else None


def test_large_blocks_ask_for_huge_pages(blocks):
    mode = _thp_mode()
    if mode not in ("madvise", "always") or blocks[2 << 20][2] == -1:
        pytest.skip(f"transparent huge pages: {mode or 'not available'} (no THPeligible to read)")
    # in madvise mode only a block that asked (madvise MADV_HUGEPAGE) is eligible
    assert blocks[2 << 20][2] == 1 and blocks[(5 << 20) + 3][2] == 1
    if mode == "madvise":
        assert blocks[64 * 1024][2] == 0
