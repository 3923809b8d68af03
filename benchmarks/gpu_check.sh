#!/usr/bin/env bash
# Every check that needs a CUDA GPU, for a machine that has one but no network (the GPU
# machines lent to some sessions: CuPy, PyTorch CUDA, NumPy and pytest installed;
# array-api-compat, array-api-strict and hypothesis carried as wheels). Prepare once, on a
# machine with PyPI (hypothesis's wheel is per Python version: add --python-version for the
# GPU machine's if it differs):
#
#   pip download --no-deps -d .whl array-api-compat==1.16.0 array-api-strict==2.6.1 \
#     hypothesis sortedcontainers
#   mkdir -p .gpu && cp ../shared/datasets/mnist/*.gz .gpu/     # optional: real MNIST
#
# then, there, carrying .whl and .gpu (both git-ignored):
#
#   bash benchmarks/gpu_check.sh            # every step in turn
#   bash benchmarks/gpu_check.sh STEP...    # only these steps, e.g. one per remote command
#   bash benchmarks/gpu_check.sh --list     # the steps
#
# Each step runs each of its commands under `timeout`, and all of them together in under
# 8 minutes with a cold kernel cache. Logs go to $OUT (default out/gpu), one per step, and
# the exit status is non-zero if any step failed, each failure named in $OUT/summary.log.
# The steps:
#   versions               CuPy, NumPy and the GPUs, and one ElementwiseKernel compiled and
#                          run: CuPy 14 needs NVRTC and the CUDA headers from its [ctk] extra
#   compare_cuda           python -m xpnn.debug compare on the mlp, cnn and lstm models: every
#                          node, forward and backward, on CuPy with and without its pass
#                          against NumPy's; names the first node that disagrees
#                          ($COMPARE_DEVICES, default cpu,cuda: cpu,cupy_standin checks the
#                          step without a GPU)
#   cupy_pass_tests        tests/devices/cupy/test_cupy_pass.py on the GPU, random programs
#                          through the pass
#   cupy_pass_vs_portable  benchmarks/cupy_pass.py: the pass against XPNN_PASSES=0 (ms/step;
#                          fails where their weights or accuracies disagree)
#   tests_cupy_1 .. _3     the whole suite with --xp=cupy, in three parts (a missing CuPy fails)
#   mlp_warmup             one epoch of benchmarks/mlp_mnist.py: fills CuPy's kernel cache
#   mlp_mnist_cuda         5 epochs, CuPy against PyTorch CUDA; xpnn's test accuracy must lie
#                          within 0.01 of torch's and reach 0.95 on MNIST (0.97 there), or 0.90
#                          without it on mlp_mnist.py's learnable synthetic data (0.94 there)
#   mnist_mlp_cuda         (with MNIST in .gpu) examples/mnist_mlp.py, accuracy >= 0.95
#   sequence_cuda          benchmarks/lstm_step.py, CuPy against PyTorch CUDA's nn.LSTM (the
#                          fused LSTM cell's CuPy kernels; control flow runs in tests_cupy_1)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-$PWD/.gpu/cupy-kernels}
export XPNN_REQUIRE_CUPY=1  # the CuPy tests fail, not skip, where CuPy cannot run

if ls .whl/*.whl >/dev/null 2>&1 && [ ! -d /tmp/xpnn-site ]; then
  timeout 300 $PY -m pip install -q --no-index --no-deps --no-compile --upgrade \
    --target /tmp/xpnn-site .whl/*.whl
fi
if [ -d /tmp/xpnn-site ]; then export PYTHONPATH=/tmp/xpnn-site; fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
data=()
if ls .gpu/train-images-idx3-ubyte* >/dev/null 2>&1; then data=(--data .gpu); fi
PYTEST=($PY -m pytest -q -ra -p no:cacheprovider)

versions() {
  timeout 60 nvidia-smi -L && timeout 240 $PY - <<'EOF'
import sys

import array_api_compat, cupy, numpy

print("numpy", numpy.__version__, "cupy", cupy.__version__, "array-api-compat",
      array_api_compat.__version__, "GPUs", cupy.cuda.runtime.getDeviceCount())
try:
    square = cupy.ElementwiseKernel("T x", "T y", "y = x * x + 1", "xpnn_probe",
                                    options=("--fmad=false",))
    got = square(cupy.arange(4, dtype=cupy.float32)).get().tolist()
except Exception as exc:
    sys.exit(f"CuPy cannot compile a kernel ({type(exc).__name__}: {exc}). NVRTC or the CUDA "
             "headers are missing: CuPy 14 ships them in its [ctk] extra, pip install "
             "'cupy-cuda12x[ctk]' (xpnn's [cuda] extra asks for it), or install the CUDA "
             "Toolkit and set CUDA_PATH")
if got != [1.0, 2.0, 5.0, 10.0]:
    sys.exit(f"a probe kernel computed {got}, not [1, 2, 5, 10]")
print("NVRTC", cupy.cuda.nvrtc.getVersion(), "compiled a kernel, which ran:", got)
EOF
}

compare_cuda() {  # the first correctness check: where CuPy and NumPy part, node by node
  local model rc=0
  for model in mlp cnn lstm; do
    timeout 180 $PY -m xpnn.debug compare --model "$model" --devices "${COMPARE_DEVICES:-cpu,cuda}" \
      --passes both || rc=1
  done
  return $rc
}

cupy_pass_tests() {
  timeout 480 "${PYTEST[@]}" tests/devices/cupy/test_cupy_pass.py \
    tests/devices/test_fastpath_random.py -k "cupy_pass" --xp=cupy
}

cupy_pass_vs_portable() {
  timeout 480 $PY benchmarks/cupy_pass.py --device cuda "${data[@]}"
}

# The suite in three parts (tests/devices/cupy/test_cupy_pass.py and the random programs
# through the pass run above); xpnn's doctests with the last.
suite() {
  timeout 480 "${PYTEST[@]}" --xp=cupy -k "not cupy_pass_on_a_gpu" \
    --ignore=tests/devices/cupy/test_cupy_pass.py "$@"
}
tests_cupy_1() { suite tests/test_*.py tests/nn tests/distributed tests/control_flow; }
tests_cupy_2() { suite tests/ops tests/compat; }
tests_cupy_3() { suite tests/devices xpnn; }

mlp_warmup() {  # compiles CuPy's kernels (cached in $CUPY_CACHE_DIR), starts cuBLAS
  timeout 480 $PY benchmarks/mlp_mnist.py --device cuda --epochs 1 "${data[@]}"
}

mlp_mnist_cuda() {
  local low=0.90
  if [ ${#data[@]} -gt 0 ]; then low=0.95; fi
  timeout 400 $PY benchmarks/mlp_mnist.py --device cuda --epochs 5 "${data[@]}" \
    | tee "$OUT/mlp_mnist_cuda.out" && accuracy "$OUT/mlp_mnist_cuda.out" "$low" 0.01
}

mnist_mlp_cuda() {
  if [ ${#data[@]} -eq 0 ]; then echo "no MNIST files in .gpu: nothing to run"; return 0; fi
  timeout 400 $PY examples/mnist_mlp.py --device cuda "${data[@]}" --epochs 3 --quiet \
    | tee "$OUT/mnist_mlp_cuda.out" && accuracy "$OUT/mnist_mlp_cuda.out" 0.95 1
}

sequence_cuda() {  # the LSTM training step: CuPy against PyTorch CUDA's nn.LSTM
  timeout 300 $PY benchmarks/lstm_step.py --runners xpnn-cuda,torch-cuda --chunks 3 \
    --chunk-steps 5 --clock wall
}

# accuracy LOG MIN_XPNN MAX_GAP: the "accuracy" values LOG prints; xpnn's (or the example's
# "test accuracy") must reach MIN_XPNN and lie within MAX_GAP of torch's, where printed.
accuracy() {
  timeout 60 $PY - "$@" <<'EOF'
import re, sys
log, low, gap = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
text = open(log).read()
found = {m[1]: float(m[2]) for m in re.finditer(r"^\s+(\w+)\s+[\d.]+ s/epoch\s+accuracy ([\d.]+)", text, re.M)}
found.update({"xpnn": float(m[1]) / 100 for m in re.finditer(r"test accuracy ([\d.]+)%", text)})
print(f"accuracies in {log}: {found}; xpnn must reach {low}, torch within {gap}")
xpnn = found.get("xpnn", -1.0)
sys.exit(0 if xpnn >= low and abs(xpnn - found.get("torch", xpnn)) <= gap else 1)
EOF
}

STEPS=(versions compare_cuda cupy_pass_tests cupy_pass_vs_portable tests_cupy_1 tests_cupy_2 tests_cupy_3
       mlp_warmup mlp_mnist_cuda mnist_mlp_cuda sequence_cuda)
if [ "${1:-}" = "--list" ]; then printf '%s\n' "${STEPS[@]}"; exit 0; fi
for step in "$@"; do
  if ! printf '%s\n' "${STEPS[@]}" | grep -qx -- "$step"; then
    echo "unknown step '$step': choose from ${STEPS[*]}" >&2
    exit 2
  fi
done

failed=()
# check STEP: run it, its output to the screen and $OUT/STEP.log; a failure is remembered
# (with its time), the next step still runs.
check() {
  local name=$1 rc=0 start=$SECONDS
  echo "== $name" | tee "$OUT/$name.log"
  "$name" 2>&1 | tee -a "$OUT/$name.log" || rc=$?
  echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/$name.log"
  if [ "$rc" -ne 0 ]; then failed+=("$name (exit $rc)"); fi
}

if [ $# -gt 0 ]; then
  for step in "$@"; do check "$step"; done
else
  check versions
  if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: versions (no usable GPU or CuPy): nothing else to check" | tee "$OUT/summary.log"
    exit 1
  fi
  for step in "${STEPS[@]:1}"; do check "$step"; done
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" | tee "$OUT/summary.log"
  exit 1
fi
echo "every GPU check run passed: ${*:-${STEPS[*]}}" | tee "$OUT/summary.log"
