#!/usr/bin/env bash
# diffcheck on a CUDA GPU: runs cases on the GPU and on the CPU, compares the two reports, and
# times the benchmark nets (100 to 10,201 parameters) on both.
#
#   bash benchmarks/gpu_check.sh            # from anywhere; PYTHON=... to pick the interpreter
#
# Needs a Python with JAX for CUDA, SymPy and NumPy (mpmath comes with SymPy); downloads nothing:
# diffcheck is imported from this checkout (PYTHONPATH). Finishes in a few minutes. Where JAX sees
# no GPU it says so and exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

# GPU_CHECK_DRY_RUN=1: the CPU stands in for the GPU, to try this script where there is none.
# GPU_CHECK_QUICK=1: the tutorial cases only, not the benchmark nets.
GPU=gpu
if [ -n "${GPU_CHECK_DRY_RUN:-}" ]; then
    GPU=cpu
    echo "gpu_check: dry run: the CPU stands in for the GPU"
else
"$PYTHON" - <<'PY' || exit 2
import sys
try:
    import jax
except ImportError as exc:
    sys.exit(f"gpu_check: cannot import JAX ({exc}); this script needs JAX for CUDA installed")
try:
    gpus = jax.devices("gpu")
except RuntimeError:
    gpus = []
if not gpus:
    sys.exit(f"gpu_check: no GPU visible to JAX (devices: {jax.devices()}); this script needs a CUDA GPU")
print(f"gpu_check: JAX {jax.__version__} on {gpus[0].device_kind} ({len(gpus)} GPU(s))")
PY
fi

# One check through the library API, not the command line: the command line's table needs rich
# (and its default cache folder platformdirs), which a bare CUDA machine need not have.
DRIVER='
import json, sys
from pathlib import Path
from diffcheck.case import collect_cases
from diffcheck.parallel import check_cases
device, out, tag, points, paths = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:]
cases, errors = collect_cases(*paths)
for message in errors:
    print(f"load error: {message}")
report = check_cases([c for c in cases if tag in c.tags], device=device, points=points, timeout=300)
out.write_text(json.dumps(report.to_dict()))
print(report)
sys.exit(0 if report.ok and not errors else 1)
'

run() {  # run gpu|cpu NAME TAG POINTS [PATH]: one check, its report in $OUT/NAME-gpu|cpu.json
    local device=$1 name=$2
    shift 2
    local start=$SECONDS flag=$device
    [ "$device" = gpu ] && flag=$GPU
    "$PYTHON" -c "$DRIVER" "$flag" "$OUT/$name-$device.json" "$@" > "$OUT/$name-$device.txt" 2>&1 ||
        { echo "gpu_check: $name on $device failed (exit $?):"; tail -20 "$OUT/$name-$device.txt"; exit 1; }
    echo "gpu_check: $name on $device: $((SECONDS - start)) s (whole process)"
}

for device in gpu cpu; do
    run "$device" tutorial tutorial 1
    [ -n "${GPU_CHECK_QUICK:-}" ] || run "$device" nets benchmark 0 benchmarks/functions.py
done

"$PYTHON" - "$OUT" <<'PY'
"""Same points, same verdicts, and the same numbers up to rounding, on both devices."""
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
failed = False
names = [n for n in ("tutorial", "nets") if (out / f"{n}-gpu.json").exists()]
for name in names:
    gpu, cpu = (json.loads((out / f"{name}-{d}.json").read_text()) for d in ("gpu", "cpu"))
    worst = {}
    for g, c in zip(gpu["points"], cpu["points"], strict=True):
        if (g["case"], g["point"], g["order"], g["status"]) != (c["case"], c["point"], c["order"], c["status"]):
            print(f"gpu_check: {name}: {g['case']} @ {g['point']}: gpu {g['status']}, cpu {c['status']}")
            failed = True
        for ge, ce in zip(g["elements"], c["elements"], strict=True):
            for method in ("symbolic", "autodiff", "autodiff_forward", "finite_difference"):
                a, b = ge.get(method), ce.get(method)
                if a is None or b is None:
                    continue
                rel = abs(a - b) / max(abs(a), abs(b), 1e-300)
                worst[method] = max(worst.get(method, 0.0), rel)
    print(f"gpu_check: {name}: {len(gpu['points'])} points, gpu ok={gpu['ok']}, cpu ok={cpu['ok']}; "
          "largest relative difference gpu vs cpu: " + ", ".join(f"{m} {v:.1e}" for m, v in worst.items()))
    failed |= not (gpu["ok"] and cpu["ok"]) or worst.get("symbolic", 0.0) > 0
if "nets" in names:
    print("\ngpu_check: one check of each net (seconds, from the reports):")
    print(f"  {'case':<16}{'params':>8}{'gpu':>9}{'cpu':>9}")
    gpu, cpu = (json.loads((out / f"nets-{d}.json").read_text()) for d in ("gpu", "cpu"))
    for g, c in zip(gpu["points"], cpu["points"]):
        print(f"  {g['case']:<16}{len(g['elements']):>8}{g['seconds']:>9.2f}{c['seconds']:>9.2f}")
print(f"\ngpu_check: reports in {out}")
sys.exit(1 if failed else 0)
PY
