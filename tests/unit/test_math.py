"""runtime_c/mlcc_math.h: the branch-free expf, tanhf and erff of generated float code, against double-precision
libm on a sweep of the floats, at the special values, and built the way generated code is built (vector FMA
code) as well as plainly; and a check that loops calling them vectorise, which is why they exist."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RUNTIME = Path(__file__).parents[2] / "runtime_c"
SWEEP = r"""
#include <stdio.h>
#include "mlcc_math.h"
static double ulps(float got, double ref) { /* |got - ref| in units of the float spacing at ref */
  float a = (float)fabs(ref);
  if (a < 1.17549435e-38f) a = 1.17549435e-38f;
  return fabs((double)got - ref) / (double)(nextafterf(a, INFINITY) - a);
}
#define SWEEP(F, REF, LO, HI) { \
  double worst = 0; \
  for (uint32_t i = 0; i < 0xFFFFF000u; i += 4093) { \
    float x; \
    memcpy(&x, &i, 4); \
    if (!(x >= LO && x <= HI)) continue; \
    const double ref = REF((double)x); \
    const float got = F(x); \
    const double u = isinf(ref) ? (got == (float)ref ? 0 : 1e9) : ulps(got, ref); \
    if (u > worst) worst = u; \
  } \
  printf(#F " %.3f\n", worst); }
static double logistic_den(double x) { return 1.0 + exp(-x); }
int main(void) {
  SWEEP(mlcc_expf, exp, -110.0f, 100.0f)
  SWEEP(mlcc_logistic_denf, logistic_den, -100.0f, 110.0f)
  SWEEP(mlcc_tanhf, tanh, -30.0f, 30.0f)
  SWEEP(mlcc_erff, erf, -30.0f, 30.0f)
  const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 88.8f, -104.0f, 89.0f, -200.0f};
  for (int i = 0; i < 9; ++i)
    printf("special %a %a %a\n", (double)mlcc_expf(specials[i]), (double)mlcc_tanhf(specials[i]),
           (double)mlcc_erff(specials[i]));
  printf("logistic %a %a %a %a\n", (double)mlcc_logistic_denf(NAN), (double)mlcc_logistic_denf(INFINITY),
         (double)mlcc_logistic_denf(-INFINITY), (double)(1.0f / mlcc_logistic_denf(-200.0f)));
  return 0;
}
"""
BOUNDS = {"mlcc_expf": 1.5, "mlcc_tanhf": 2.0, "mlcc_erff": 8.0, "mlcc_logistic_denf": 2.0}  # ulp (mlcc_math.h)


def _run_sweep(tmp_path: Path, flags: list[str]) -> dict[str, object]:
    src = tmp_path / "sweep.c"
    src.write_text(SWEEP)
    exe = tmp_path / "sweep"
    subprocess.run(["cc", "-std=c11", "-O2", *flags, f"-I{RUNTIME}", str(src), "-o", str(exe), "-lm"], check=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    worst = {line.split()[0]: float(line.split()[1]) for line in lines if line.split()[0].startswith("mlcc_")}
    specials = [line.split()[1:] for line in lines if line.startswith("special")]
    logistic = next(line.split()[1:] for line in lines if line.startswith("logistic"))
    return {"worst": worst, "specials": specials, "logistic": logistic}


@pytest.mark.parametrize(
    "flags", [["-fno-trapping-math"], ["-fno-trapping-math", "-ffp-contract=fast", "-march=native"]]
)
def test_accuracy_against_libm(tmp_path, flags):
    got = _run_sweep(tmp_path, flags)
    for fn, bound in BOUNDS.items():
        assert got["worst"][fn] <= bound, f"{fn}: {got['worst'][fn]} ulp > {bound} with {flags}"
    assert got["worst"]["mlcc_expf"] > 0  # the sweep compared something
    nan, inf, minf, zero, mzero, big, tiny, over, under = got["specials"]
    assert all("nan" in v for v in nan)
    assert inf == ["inf", "0x1p+0", "0x1p+0"]
    assert minf == ["0x0p+0", "-0x1p+0", "-0x1p+0"]
    assert zero == ["0x1p+0", "0x0p+0", "0x0p+0"]
    assert mzero == ["0x1p+0", "-0x0p+0", "-0x0p+0"]
    assert big[0] == "inf" and over[0] == "inf"  # past the float range
    assert tiny[0] == "0x0p+0" and under[0] == "0x0p+0"
    # 1 + exp(-x): NaN stays NaN, +inf gives 1 (Sigmoid 1), -inf and -200 give inf (Sigmoid 0)
    den_nan, den_inf, den_minf, sigmoid_far = got["logistic"]
    assert "nan" in den_nan and den_inf == "0x1p+0" and den_minf == "inf" and sigmoid_far == "0x0p+0"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="the vectorisation report is gcc's")
@pytest.mark.parametrize("fn", sorted(BOUNDS))
def test_loops_vectorise(tmp_path, fn):
    src = tmp_path / "loop.c"
    src.write_text(
        '#include "mlcc_math.h"\n'
        f"void f(float *restrict y, const float *restrict x, long n) {{ for (long i = 0; i < n; ++i) y[i] = {fn}(x[i]); }}\n"
    )
    flags = ["-std=c11", "-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast"]
    for arch in ([], ["-march=x86-64-v3"]) if "x86_64" in _machine() else ([],):
        report = subprocess.run(
            ["gcc", *flags, *arch, f"-I{RUNTIME}", "-c", str(src), "-o", str(tmp_path / "loop.o"), "-fopt-info-vec"],
            check=True,
            capture_output=True,
            text=True,
        ).stderr
        assert "loop vectorized" in report, f"{fn} {arch}: {report}"


def _machine() -> str:
    return subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout
