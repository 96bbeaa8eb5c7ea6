#!/bin/bash
# The GPU measurements of benchmarks/results/throughput_gpu.md, for a machine with a CUDA
# JAX but without PyMC (such as the project's device machine, which has no network).
#
# On a machine with network, from the repository root, fetch the missing packages once:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 -d .whl pytensor==2.38.3 pymc==5.28.5 arviz==0.23.4 \
#       numpyro==0.22.0 nutpie==0.16.8 arro3-core==0.9.1 xarray-einstats==0.9.1 \
#       h5netcdf==1.8.2 cons==0.4.7 etuples==0.3.10 logical-unification==0.4.7 \
#       miniKanren==1.0.5 cachetools==6.2.6 platformdirs==4.14.7 flatbuffers==25.12.19
# and copy ../shared/datasets/{epoch_chinchilla,revisiting_scaling_laws} into .devdata/.
# Then, on the GPU machine:  bash benchmarks/gpu_device.sh   (results in $OUT or ./gpu_out)
set -o pipefail
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
export BAYESCALE_DATA=${BAYESCALE_DATA:-$PWD/.devdata} PYTHONUNBUFFERED=1 BAYESCALE_NO_PROGRESS=1
B=benchmarks/throughput.py
python3 $B --only first,refit --samplers jax --out "$OUT/gpu_first_refit.md"
python3 $B --only batch --samplers jax --ks 1,10,92 --draws 500 --tune 500 --out "$OUT/gpu_batch.md"
# first fit in fresh processes with and without the stored programs (bayescale.programs)
python3 $B --only processes --processes 3 --out "$OUT/gpu_processes.md"
JAX_PLATFORMS=cpu python3 $B --only first,refit --samplers jax --out "$OUT/hostcpu_jax.md"
JAX_PLATFORMS=cpu python3 $B --only batch --samplers jax --ks 10 --draws 500 --tune 500 \
    --out "$OUT/hostcpu_batch10.md"
python3 $B --only first,refit --samplers nutpie --out "$OUT/hostcpu_nutpie.md"
python3 benchmarks/sampler_rows.py "$OUT/sampler_rows.csv"
python3 -m pytest -q -p no:cacheprovider tests/test_throughput.py tests/test_programs.py
