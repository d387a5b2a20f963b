#!/bin/bash
# issue 13, eighth session: longer epochs (training split x10) so the AttnGen/CNN ratio
# is resolved, and the faithfulness loss on half of each batch beside the default
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
LOG=$OUT/log3.txt
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> $LOG 2>&1
for r in 1 2; do
  echo "== run $r $(date +%T)" >> $LOG
  timeout 250 python3 benchmarks/backends.py --backends jax --sequences 48000 --repeat 10 \
    --batch-sizes 1024 256 --epochs 3 --faithfulness-batch-fractions 1.0 0.5 \
    --out $OUT/jax_long_r$r.json >> $LOG 2>&1
  echo "rc $? $(date +%T)" >> $LOG
done
cat $LOG | grep -v "^I0000\|^W0000\|absl"
