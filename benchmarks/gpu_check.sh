#!/usr/bin/env bash
# Issue 12's goal 3 on a lent GPU machine, in one call: `fashion run --preset best` with a
# 9-minute budget on Keras's JAX backend (those machines have JAX and PyTorch, no TensorFlow),
# scored on the standard and the seed split's test images, with the GPU's utilisation logged
# every 5 s (a GPU left waiting on the host shows as a low figure).
#
# Here, once (downloads Keras, KerasTuner and what they need that those machines lack, as
# wheels for their Python 3.12, and copies the data, into two ignored folders that travel):
#     bash benchmarks/gpu_check.sh prepare
# Then through the workplace's device tool, in one call (about 10 minutes of its 15):
#     run(command="bash benchmarks/gpu_check.sh", carry=[".whl", ".data"], timeout_s=600)
# The figures come back under $OUT: gpu-check.log, gpu-util.log and the run's accuracy.json.
set -euo pipefail

if [ "${1:-}" = prepare ]; then
    for folder in /.whl/ /.data/; do
        grep -qxF "$folder" .git/info/exclude || echo "$folder" >> .git/info/exclude
    done
    python="${PYTHON:-.venv/bin/python}"
    keras=$("$python" -c 'import keras; print(keras.__version__)')
    tuner=$("$python" -c 'import keras_tuner; print(keras_tuner.__version__)')
    rm -rf .whl && mkdir .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
        "keras==$keras" "keras-tuner==$tuner" kt-legacy namex optree
    mkdir -p .data
    cp "${FASHION_MNIST_DIR:-../shared/data/fashion-mnist}"/*.gz .data/
    du -sh .whl .data
    exit 0
fi

out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD/src" KERAS_BACKEND=jax FASHION_MNIST_DIR="$PWD/.data" \
    PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu-check.log"
nvidia-smi dmon -s u -d 5 > "$out/gpu-util.log" 2>&1 &
trap 'kill $!' EXIT
python3 -m benchmarks.accuracy --only best --budget "${BUDGET:-9}" --out /tmp/gpu-runs \
    --markdown 2>&1 | grep -v "^Epoch\|step - " | tee -a "$out/gpu-check.log"
cp /tmp/gpu-runs/accuracy.json /tmp/gpu-runs/best/config.json /tmp/gpu-runs/best/metrics.json \
    "$out/"
