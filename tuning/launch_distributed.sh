#!/usr/bin/env bash
# Starts one KerasTuner chief and N workers on this machine, then waits for all.
#
#   tuning/launch_distributed.sh N HOST:PORT attngen-tune-arguments...
#   tuning/launch_distributed.sh 2 127.0.0.1:8000 --data motifs.csv --project-name demo \
#       --tuner random --max-trials 6 --max-epochs 3
#
# On several machines, run the chief line on one machine and a worker line on
# each other machine instead (same arguments, the chief's reachable address,
# a distinct --worker-id per worker). Logs: tuning/runs/<project>.{chief,worker<i>}.log
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,12p' "$0"; exit 2
fi
workers=$1; address=$2; shift 2
project=$(printf '%s\n' "$@" | awk 'prev=="--project-name"{print; exit} {prev=$0}')
logs=tuning/runs; mkdir -p "$logs"
attngen tune "$@" --distributed chief --oracle-address "$address" > "$logs/$project.chief.log" 2>&1 &
chief=$!
sleep 3  # let the chief open its port
pids=()
for ((i = 0; i < workers; i++)); do
  attngen tune "$@" --distributed worker --worker-id "$i" --oracle-address "$address" \
    > "$logs/$project.worker$i.log" 2>&1 &
  pids+=($!)
done
status=0
# the chief returns once every worker is done; if it fails, stop the workers
# (they would otherwise wait for the oracle for up to an hour)
wait "$chief" || { status=$?; kill "${pids[@]}" 2>/dev/null || true; }
for pid in "${pids[@]}"; do wait "$pid" || { rc=$?; [ "$status" -eq 0 ] && status=$rc; }; done
tail -n 20 "$logs/$project.chief.log"
exit $status
