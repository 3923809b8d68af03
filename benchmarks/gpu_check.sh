#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one go, for a machine that has one but no network
# (the GPU machines lent to some sessions: CuPy, PyTorch CUDA, NumPy and pytest installed;
# array-api-compat and array-api-strict carried as wheels). Writes its logs to $OUT
# (default out/gpu). Prepare once, on a machine with PyPI:
#
#   pip download --no-deps -d .whl array-api-compat==1.16.0 array-api-strict==2.6.1
#   mkdir -p .gpu && cp ../shared/datasets/mnist/*.gz .gpu/     # optional: real MNIST
#
# then run `bash benchmarks/gpu_check.sh` there, carrying .whl and .gpu (both git-ignored).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/xpnn-site \
    .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/xpnn-site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
data=()
if ls .gpu/train-images-idx3-ubyte* >/dev/null 2>&1; then data=(--data .gpu); fi

{
  nvidia-smi -L
  $PY -c "import numpy, cupy, array_api_compat; print('numpy', numpy.__version__, 'cupy',
cupy.__version__, 'array-api-compat', array_api_compat.__version__)"
} 2>&1 | tee "$OUT/versions.log"

# The test suite on CuPy (and NumPy beside it, to tell a CuPy failure from a broken install).
timeout 300 $PY -m pytest -q -p no:cacheprovider --xp=numpy,cupy 2>&1 | tee "$OUT/tests_cupy.log"
# CuPy against PyTorch CUDA, then the example end to end on the GPU.
timeout 180 $PY benchmarks/mlp_mnist.py --device cuda --epochs 5 "${data[@]}" 2>&1 \
  | tee "$OUT/mlp_mnist_cuda.log"
if [ ${#data[@]} -gt 0 ]; then
  timeout 120 $PY examples/mnist_mlp.py --device cuda "${data[@]}" --epochs 3 --quiet 2>&1 \
    | tee "$OUT/mnist_mlp_cuda.log"
fi
