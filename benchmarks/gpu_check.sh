#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one go, for a machine that has one but no network
# (the GPU machines lent to some sessions: CuPy, PyTorch CUDA, NumPy and pytest installed;
# array-api-compat, array-api-strict and hypothesis carried as wheels). Writes its logs to
# $OUT (default out/gpu) and exits non-zero if any check failed, naming each. Prepare once,
# on a machine with PyPI (hypothesis's wheel is per Python version: add --python-version
# for the GPU machine's if it differs):
#
#   pip download --no-deps -d .whl array-api-compat==1.16.0 array-api-strict==2.6.1 \
#     hypothesis sortedcontainers
#   mkdir -p .gpu && cp ../shared/datasets/mnist/*.gz .gpu/     # optional: real MNIST
#
# then run `bash benchmarks/gpu_check.sh` there, carrying .whl and .gpu (both git-ignored).
# The checks: the CuPy pass's tests (tests/test_cupy_pass.py on the GPU, random programs
# through the pass against CuPy's portable plan) and benchmarks/cupy_pass.py (the pass
# against XPNN_CUPY_PASSES=0: ms/step, and a failure where their weights or accuracies
# disagree); the whole suite with --xp=cupy (every backend-generic test on CuPy, the rest
# as usual; a missing CuPy fails rather than skips); then the MLP benchmark (after a
# warm-up epoch that fills CuPy's kernel cache, so no timed epoch compiles kernels) and the
# MNIST example, each with its printed test accuracies checked.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-$PWD/.gpu/cupy-kernels}
export XPNN_REQUIRE_CUPY=1  # the CuPy tests fail, not skip, where CuPy cannot run

if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/xpnn-site \
    .whl/*.whl
  export PYTHONPATH=/tmp/xpnn-site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
data=()
if ls .gpu/train-images-idx3-ubyte* >/dev/null 2>&1; then data=(--data .gpu); fi

failed=()
# check NAME SECONDS COMMAND...: run it (a program under timeout, or a function below), its
# output to the screen and $OUT/NAME.log; a failure is remembered, the next check still runs.
check() {
  local name=$1 limit=$2 rc=0
  shift 2
  echo "== $name: $*" | tee "$OUT/$name.log"
  if declare -F "$1" >/dev/null; then
    "$@" 2>&1 | tee -a "$OUT/$name.log" || rc=$?
  else
    timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log" || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then failed+=("$name (exit $rc)"); fi
}

versions() {
  nvidia-smi -L &&
  $PY -c "import numpy, cupy, array_api_compat; print('numpy', numpy.__version__, 'cupy',
cupy.__version__, 'array-api-compat', array_api_compat.__version__, 'GPUs',
cupy.cuda.runtime.getDeviceCount())"
}

# accuracy LOG MIN_XPNN MAX_GAP: the "accuracy" values LOG prints; xpnn's (or the example's
# "test accuracy") must reach MIN_XPNN and lie within MAX_GAP of torch's, where printed.
accuracy() {
  $PY - "$@" <<'EOF'
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

check versions 60 versions
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: versions (no usable GPU or CuPy): nothing else to check" | tee "$OUT/summary.log"
  exit 1
fi

check cupy_pass_tests 420 $PY -m pytest -q -ra -p no:cacheprovider tests/test_cupy_pass.py \
  tests/test_fastpath_random.py -k "cupy_pass" --xp=cupy
check cupy_pass_vs_portable 300 $PY benchmarks/cupy_pass.py --device cuda "${data[@]}"
check tests_cupy 600 $PY -m pytest -q -ra -p no:cacheprovider --xp=cupy \
  --ignore=tests/test_cupy_pass.py -k "not cupy_pass_on_a_gpu"

# CuPy against PyTorch CUDA: a warm-up epoch compiles CuPy's kernels (cached in
# $CUPY_CACHE_DIR) and starts cuBLAS for both, then the timed run. Real MNIST reaches 0.97
# in 5 epochs; on random labels only xpnn's agreement with torch (same weights, batches)
# means anything.
if [ ${#data[@]} -gt 0 ]; then low=0.95 gap=0.01; else low=0.0 gap=0.03; fi
check mlp_warmup 300 $PY benchmarks/mlp_mnist.py --device cuda --epochs 1 "${data[@]}"
check mlp_mnist_cuda 300 $PY benchmarks/mlp_mnist.py --device cuda --epochs 5 "${data[@]}"
check mlp_accuracy 30 accuracy "$OUT/mlp_mnist_cuda.log" "$low" "$gap"
if [ ${#data[@]} -gt 0 ]; then
  check mnist_mlp_cuda 180 $PY examples/mnist_mlp.py --device cuda "${data[@]}" --epochs 3 \
    --quiet
  check mnist_accuracy 30 accuracy "$OUT/mnist_mlp_cuda.log" 0.95 1
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" | tee "$OUT/summary.log"
  exit 1
fi
echo "every GPU check passed" | tee "$OUT/summary.log"
