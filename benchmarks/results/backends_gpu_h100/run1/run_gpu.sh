#!/bin/bash
# One prepared GPU check for issue 13: benchmarks/backends.py at HEAD on JAX (two rounds) and torch (one).
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
LOG=$OUT/log.txt
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; lscpu | grep 'Model name'; git log --oneline -1 2>/dev/null; python3 -c 'import keras, jax, torch; print("keras", keras.__version__, "jax", jax.__version__, "torch", torch.__version__)'; } >> $LOG 2>&1
for r in 1 2; do
  echo "== jax round $r $(date +%T)" >> $LOG
  timeout 200 python3 benchmarks/backends.py --backends jax --sequences 48000 --batch-sizes 256 1024 --epochs 4 --presets faithful paper --out $OUT/jax_r$r.json >> $LOG 2>&1
  echo "rc $? $(date +%T)" >> $LOG
done
echo "== torch $(date +%T)" >> $LOG
timeout 150 python3 benchmarks/backends.py --backends torch --sequences 48000 --batch-sizes 1024 256 --epochs 2 --presets faithful --out $OUT/torch.json >> $LOG 2>&1
echo "rc $? $(date +%T)" >> $LOG
tail -40 $LOG
