#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine (Debian's slurm-wlm and munge; run as root),
# state and logs in a temporary folder: `longtail reproduce sweep --slurm --submit` sends a sweep
# of three tiny runs on the real CIFAR-10 as a job array; one task is told mid-run that its time
# is up (SIGUSR1, as `--signal` does before the limit), checkpoints, requeues itself and resumes.
# The test checks that every run finished, that the signalled one resumed from its checkpoint
# rather than starting over, and that the table job rendered the comparison; then it stops the
# daemons it started, by PID.
#   scripts/ci/slurm-test.sh [LONGTAIL_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-target/release/longtail}")
data=${LONGTAIL_DATA:?set LONGTAIL_DATA to the CIFAR-10 binary folder}
for tool in munged slurmctld slurmd sbatch scontrol squeue; do
  command -v "$tool" >/dev/null || { echo "slurm-test: $tool not found; apt-get install slurm-wlm munge" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "slurm-test: the daemons run as root here; run as root" >&2; exit 1; }

T=$(mktemp -d /tmp/longtail-slurm.XXXXXX)
chmod 755 "$T"
host=$(hostname -s)
deadline=$((SECONDS + 280))
fail() { echo "slurm-test: $*" >&2; for f in "$T"/slurmctld.log "$T"/slurmd.log; do echo "--- $f" >&2; tail -20 "$f" >&2 || true; done; exit 1; }
stop() {
  for p in slurmd slurmctld munged; do
    [ -f "$T/$p.pid" ] && kill "$(cat "$T/$p.pid")" 2>/dev/null || true
  done
  sleep 1
  rm -rf "$T"
}
trap stop EXIT

# munge, with its own key and socket.
mkdir -p "$T/munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$T/munge"; chmod 400 "$T/munge/munge.key"
munged --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.sock" \
  --pid-file="$T/munged.pid" --log-file="$T/munged.log" --seed-file="$T/munge/seed"

mkdir -p "$T/state" "$T/spool"
port=$((20000 + RANDOM % 20000))
cat > "$T/slurm.conf" <<EOF
ClusterName=longtail-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
MinJobAge=600
NodeName=$host CPUs=$(nproc) RealMemory=2000 State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$T/slurm.conf
slurmctld -i || fail "slurmctld did not start"
slurmd || fail "slurmd did not start"
until sinfo -h -o %t 2>/dev/null | grep -qx idle; do
  [ $SECONDS -lt $deadline ] || fail "the node never came up idle: $(sinfo 2>&1)"
  sleep 1
done
echo "slurm-test: cluster up ($host, port $port)"

runs=$T/runs
out=$("$bin" reproduce sweep tests/cluster/sweep.toml --runs "$runs" --data "$data" --slurm --submit \
  --slurm-cpus 1 --slurm-mem 500M --slurm-time 20 --slurm-signal-before 60)
echo "$out"
job=$(echo "$out" | sed -n 's/^submitted array \([0-9]*\).*/\1/p')
[ -n "$job" ] || fail "no array id in: $out"

# Task 2 (tiny-seed2): once it has a checkpoint, tell it its time is up.
killed=$runs/tiny-seed2
until grep -qs '"epochs_done": [1-4],' "$killed/state.json"; do
  [ $SECONDS -lt $deadline ] || fail "tiny-seed2 never reached a checkpoint: $(squeue 2>&1)"
  [ ! -f "$killed/summary.json" ] || fail "tiny-seed2 finished before it could be signalled"
  sleep 0.2
done
scancel --signal=USR1 --batch "${job}_2"
echo "slurm-test: sent SIGUSR1 to task ${job}_2 at epoch $(sed -n 's/.*"epochs_done": *\([0-9]*\).*/\1/p' "$killed/state.json")"

# SLURM holds a requeued job back for about two minutes (its BeginTime); start it sooner. Not at
# once: slurmd refuses a job whose new credential dates from the second its old one was revoked in.
until grep -qs requeued "$runs/slurm/logs/${job}_2.out"; do
  [ $SECONDS -lt $deadline ] || fail "task 2 never requeued itself: $(cat "$runs/slurm/logs/${job}_2.out" 2>&1)"
  sleep 0.5
done
until squeue -h -j "${job}_2" -o %r 2>/dev/null | grep -q BeginTime; do
  [ $SECONDS -lt $deadline ] || fail "task 2 is not waiting as requeued: $(squeue 2>&1)"
  sleep 0.5
done
sleep 3
scontrol update JobId="${job}_2" StartTime=now

# Every task, then the table job. A squeue that fails (slurmctld busy) is not an empty queue.
queue_empty() { local q; q=$(squeue -h -o %i 2>&1) || return 1; [ -z "$q" ]; }
until queue_empty; do
  [ $SECONDS -lt $deadline ] || fail "the array did not end in time: $(squeue 2>&1)"
  sleep 2
done
for r in tiny tiny-seed1 tiny-seed2; do
  [ -f "$runs/$r/summary.json" ] || fail "$r did not finish (log: $(tail -3 "$runs/$r.log" 2>&1))"
done
grep -q "requeued" "$runs"/slurm/logs/"${job}"_2.out || fail "task 2 did not requeue itself: $(cat "$runs"/slurm/logs/"${job}"_2.out)"
grep -q "^resuming .* after epoch [1-9]" "$runs/tiny-seed2.log" || fail "tiny-seed2 did not resume from its checkpoint: $(cat "$runs/tiny-seed2.log")"
# Resumed, not restarted: epochs 1..6 each once, and the resume recorded in meta.json.
epochs=$(sed -n 's/^{"epoch":\([0-9]*\),.*/\1/p' "$killed/metrics.jsonl" | tr '\n' ' ')
[ "$epochs" = "1 2 3 4 5 6 " ] || fail "tiny-seed2's metrics.jsonl has epochs '$epochs'"
tr -d ' \n' < "$killed/meta.json" | grep -q '"resumes":\[{"after_epoch":[1-9]' || fail "tiny-seed2's meta.json records no resume"
grep -q "| tiny | 3 | 0, 1, 2 |" "$runs/sweep.md" || fail "the table job did not render the seeds' mean: $(cat "$runs/sweep.md" 2>&1)"
echo "slurm-test: 3 runs finished, the signalled one requeued and resumed, table rendered ($SECONDS s)"
