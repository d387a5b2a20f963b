#!/bin/bash
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
LOG=$OUT/log2.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> $LOG 2>&1
echo "== breakdown 1024 $(date +%T)" >> $LOG
timeout 170 python3 benchmarks/results/backends_gpu_h100/step_breakdown.py --sequences 48000 --batch 1024 --out $OUT/breakdown_1024.json >> $LOG 2>&1
echo "rc $? $(date +%T)" >> $LOG
echo "== backends jax 1024 $(date +%T)" >> $LOG
timeout 90 python3 benchmarks/backends.py --backends jax --sequences 48000 --batch-sizes 1024 --epochs 4 --presets faithful paper --out $OUT/jax_r3.json >> $LOG 2>&1
echo "rc $? $(date +%T)" >> $LOG
echo "== breakdown 256 $(date +%T)" >> $LOG
timeout 70 python3 benchmarks/results/backends_gpu_h100/step_breakdown.py --sequences 48000 --batch 256 --variants cnn faithful paper faithful_no_sort --out $OUT/breakdown_256.json >> $LOG 2>&1
echo "rc $? $(date +%T)" >> $LOG
cat $LOG
