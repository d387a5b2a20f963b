#!/bin/bash
# issue 13, eighth session, second call: does grouping batches into one compiled call
# (Model.compile steps_per_execution) take the host's per-step dispatch out of the ratio?
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
LOG=$OUT/log4.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> $LOG 2>&1
for spe in 32 1; do
  echo "== steps_per_execution $spe $(date +%T)" >> $LOG
  timeout 140 python3 benchmarks/backends.py --backends jax --sequences 48000 --repeat 5 \
    --batch-sizes 1024 256 --epochs 3 --steps-per-execution $spe \
    --out $OUT/jax_spe$spe.json >> $LOG 2>&1
  echo "rc $? $(date +%T)" >> $LOG
done
grep -v "^I0000\|^W0000\|absl" $LOG
