#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, from Debian packages: for trying profiles/slurm without a cluster,
# and for tests/test_slurm.py. Run as root (Debian 12: slurm-wlm 22.05, munge 0.5).
#
#   tools/slurm_cluster.sh install         # apt-get install munge slurmctld slurmd slurm-client (if missing)
#   tools/slurm_cluster.sh up [--gpus N]   # install, write /etc/slurm/slurm.conf, start munged, slurmctld and
#                                          # slurmd on localhost, wait until the node takes jobs, run one job
#   tools/slurm_cluster.sh status          # exit 0 when the cluster is up and its node takes jobs
#   tools/slurm_cluster.sh down            # cancel every job, stop the three daemons, remove the job state and
#                                          # the slurm.conf this script wrote (the packages stay installed)
#
# Every command is idempotent: `up` on a running cluster with the same settings does nothing, `down` on a
# stopped one does nothing. `up` with other settings (another --gpus) restarts the daemons with the new ones.
#
# The one node has this machine's cores and memory (`slurmd -C`) and one partition, `debug`, the default.
# --gpus N declares N GPUs as a generic resource (gres/gpu, default 0): /dev/nvidia0.. where they exist, else
# stand-in devices (like /dev/null). SLURM counts stand-ins as GPUs and grants them to jobs that ask
# (`sbatch --gpus=1`, with CUDA_VISIBLE_DEVICES set), and the jobs run on the CPU: enough to run the profile's
# GPU switch (`--config gpu=1`) end to end on a machine without a GPU.
#
# No accounting storage (no slurmdbd, no database): `sacct` has nothing to answer from, so profiles/slurm asks
# the executor plugin to read job states with `squeue` (slurm-status-command: squeue). squeue keeps a finished
# job, with its final state (COMPLETED, FAILED, CANCELLED, ...), for MinJobAge seconds: set here to 600, well above
# the plugin's longest wait between two status checks (180 s).
#
# The script refuses to touch a /etc/slurm/slurm.conf it did not write (a real cluster's): exit status 3.
# Daemons run in the background without systemd (containers have none); their logs are in /var/log/slurm/ and
# their pid files in /run/slurm/.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
MARK="# written by lotterybook tools/slurm_cluster.sh"
RUN_DIR=/run/slurm
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
LOG_DIR=/var/log/slurm
STANDIN_DIR=/var/lib/slurm/lotterybook-standin
PACKAGES=(munge slurmctld slurmd slurm-client)
WAIT_S=60

say() { echo "slurm_cluster: $*" >&2; }
die() { say "$*"; exit "${2:-1}"; }

need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts daemons)"; }

installed() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
                && command -v munged >/dev/null; }

install_packages() {
  installed && return 0
  command -v apt-get >/dev/null || die "no apt-get: install ${PACKAGES[*]} with your package manager"
  say "installing ${PACKAGES[*]}"
  # policy-rc.d-less machines with systemd would start the services from the packages' scripts: this script
  # starts and stops the daemons itself, so keep the packages from starting them.
  local policy=/usr/sbin/policy-rc.d added=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; added=1; fi
  local ok=1
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${PACKAGES[@]}"; } >/dev/null || ok=0
  if [ -n "$added" ]; then rm -f "$policy"; fi
  [ "$ok" = 1 ] || die "apt-get install ${PACKAGES[*]} failed"
  installed || die "packages installed but slurmctld/slurmd/sbatch/munged not found"
}

# pid of a daemon from its pid file, if that process is alive and is that daemon
alive() {  # alive NAME PIDFILE
  local pid
  [ -s "$2" ] || return 1
  pid="$(cat "$2")"
  [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$1" ] && echo "$pid"
}

stop() {  # stop NAME PIDFILE
  local pid i
  pid="$(alive "$1" "$2")" || { rm -f "$2"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.2; done
  [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$2"
}

ours() { [ ! -e "$CONF" ] || head -1 "$CONF" | grep -qxF "$MARK"; }

# The configuration for this machine and the given number of GPUs, on stdout.
config() {  # config GPUS
  local host node
  host="$(hostname -s)"
  # "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
  node="$(slurmd -C | head -1)"
  if [ "$1" -gt 0 ]; then node="$node Gres=gpu:$1"; fi
  cat <<EOF
$MARK
# A single-node cluster on localhost (tools/slurm_cluster.sh up; \`down\` removes this file).
ClusterName=lotterybook
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmdSpoolDir=$SPOOL_DIR
StateSaveLocation=$STATE_DIR
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
# cores are the consumable resource; memory requests (--mem) are checked against the node, not summed
SelectTypeParameters=CR_Core
# no accounting storage: job states come from slurmctld (squeue), which keeps a finished job for MinJobAge s
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
GresTypes=gpu
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# gres.conf: one line per GPU. slurmd drops a GPU without a device file, so a GPU this machine lacks gets a
# stand-in device in $STANDIN_DIR (a character device like /dev/null: reads nothing, discards writes)
gres_conf() {  # gres_conf GPUS
  local i dev
  echo "$MARK"
  for ((i = 0; i < $1; i++)); do
    dev="/dev/nvidia$i"
    if [ ! -c "$dev" ]; then
      dev="$STANDIN_DIR/gpu$i"
      [ -c "$dev" ] || mknod -m 0666 "$dev" c 1 3 || die "cannot create the stand-in device $dev (mknod)"
    fi
    echo "NodeName=$(hostname -s) Name=gpu File=$dev"
  done
}

node_state() { sinfo -h -N -o %T 2>/dev/null | head -1; }

is_up() {
  alive munged /run/munge/munged.pid >/dev/null && alive slurmctld "$RUN_DIR/slurmctld.pid" >/dev/null \
    && alive slurmd "$RUN_DIR/slurmd.pid" >/dev/null || return 1
  case "$(node_state)" in idle|mixed|allocated|completing) return 0 ;; *) return 1 ;; esac
}

start_munge() {
  alive munged /run/munge/munged.pid >/dev/null && return 0
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
      || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  fi
  runuser -u munge -- /usr/sbin/munged
  munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"
}

up() {
  local gpus=0 new i state
  while [ $# -gt 0 ]; do
    case "$1" in
      --gpus) gpus="${2:?--gpus needs a number}"; shift 2 ;;
      --gpus=*) gpus="${1#--gpus=}"; shift ;;
      *) die "unknown option: $1" 2 ;;
    esac
  done
  [[ "$gpus" =~ ^[0-9]+$ ]] || die "--gpus takes a number, not '$gpus'" 2
  need_root
  install_packages
  ours || die "$CONF exists and was not written by this script (a real cluster's?): not touching it" 3
  new="$(config "$gpus")"
  if [ -e "$CONF" ] && [ "$new" = "$(cat "$CONF")" ] && is_up; then
    say "up (unchanged): $(sinfo -h -N -o '%N %T cpus=%c mem=%m gres=%G')"
    return 0
  fi
  # new or changed settings, or a daemon missing: (re)start slurmctld and slurmd with this configuration
  stop slurmd "$RUN_DIR/slurmd.pid"
  stop slurmctld "$RUN_DIR/slurmctld.pid"
  install -d -o slurm -g slurm -m 0755 "$RUN_DIR" "$STATE_DIR" "$LOG_DIR"
  install -d -m 0755 "$SPOOL_DIR" "$STANDIN_DIR"
  printf '%s\n' "$new" >"$CONF"
  gres_conf "$gpus" >"$GRES_CONF"
  start_munge
  slurmctld || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
  slurmd || die "slurmd did not start (see $LOG_DIR/slurmd.log)"
  for i in $(seq 1 "$WAIT_S"); do
    state="$(node_state)"
    case "$state" in
      idle|mixed|allocated) break ;;
      down*|drain*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;;
    esac
    sleep 1
  done
  is_up || die "the node is not taking jobs after ${WAIT_S} s (state '${state:-none}'; see $LOG_DIR/)"
  # one job through the whole path: sbatch, slurmctld, slurmd, back
  timeout "$WAIT_S" sbatch --wait --quiet -o /dev/null -t 1 --wrap true \
    || die "a trivial job did not run (see $LOG_DIR/)"
  say "up: $(sinfo -h -N -o '%N %T cpus=%c mem=%m gres=%G')"
}

down() {
  need_root
  if ! ours; then die "$CONF was not written by this script: not touching it" 3; fi
  local jobs
  if alive slurmctld "$RUN_DIR/slurmctld.pid" >/dev/null; then
    jobs="$(squeue -h -t PENDING,RUNNING,SUSPENDED -o %i 2>/dev/null || true)"
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      scancel --full $jobs 2>/dev/null || true
      sleep 2
    fi
  fi
  stop slurmd "$RUN_DIR/slurmd.pid"
  stop slurmctld "$RUN_DIR/slurmctld.pid"
  stop munged /run/munge/munged.pid
  # the job state and spool of this cluster (only ever written by it), and its configuration
  if [ -d "$STATE_DIR" ]; then find "$STATE_DIR" -mindepth 1 -delete; fi
  if [ -d "$SPOOL_DIR" ]; then find "$SPOOL_DIR" -mindepth 1 -delete; fi
  rm -rf "$STANDIN_DIR"
  rm -f "$CONF"
  if [ -e "$GRES_CONF" ] && head -1 "$GRES_CONF" | grep -qxF "$MARK"; then rm -f "$GRES_CONF"; fi
  say "down"
}

status() {
  if is_up; then
    say "up: $(sinfo -h -N -o '%N %T cpus=%c mem=%m gres=%G')"
    squeue -h -o '  job %i %T %j' 2>/dev/null || true
    return 0
  fi
  say "down"
  return 1
}

case "${1:-}" in
  install) need_root; install_packages ;;
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
