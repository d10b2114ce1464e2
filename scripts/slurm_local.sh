#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for the tests and for trying the cluster path:
#
#   bash scripts/slurm_local.sh start    # install (Debian's munge, slurmctld, slurmd, slurm-client), configure, start
#   bash scripts/slurm_local.sh status   # sinfo
#   bash scripts/slurm_local.sh stop     # cancel every job, stop the daemons
#
# The node has this machine's cores and memory, no cgroups (proctrack/linuxproc, task/none) and
# KillOnBadExit=1, as many clusters have. Needs root (or password-less sudo) and Debian's packages.
# When it cannot start, it says why in one line and writes that line to $STATE/unavailable, so the
# tests skip with it (and CI, which sets PADLIB_REQUIRE_SLURM=1, fails instead).
set -uo pipefail

STATE=${SLURM_LOCAL_STATE:-/var/lib/padlib-slurm}
CONF_DIR=/etc/slurm
PACKAGES=(munge slurmctld slurmd slurm-client)
# SLURM's own default is 30 s; the tests keep it and so should a user trying preemption here
KILL_WAIT=${SLURM_LOCAL_KILL_WAIT:-30}

say() { echo "slurm_local: $*"; }

unavailable() {
    say "unavailable: $*" >&2
    mkdir -p "$STATE" 2>/dev/null && echo "$*" > "$STATE/unavailable"
    exit 3
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif sudo -n true 2>/dev/null; then sudo -n "$@"; else return 1; fi
}

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -1; }

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} = 0 ] && return 0
    command -v apt-get >/dev/null || unavailable "no apt-get to install ${missing[*]} (not Debian/Ubuntu)"
    as_root true || unavailable "installing ${missing[*]} needs root or password-less sudo"
    say "installing ${missing[*]} (Debian packages) ..."
    # the daemons are started below, by hand: no init system in containers
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
        as_root apt-get update -qq >/dev/null 2>&1
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1
    } || { as_root rm -f /usr/sbin/policy-rc.d; unavailable "apt-get install ${missing[*]} failed"; }
    as_root rm -f /usr/sbin/policy-rc.d
}

write_config() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    as_root mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" /var/log/slurm
    as_root tee "$CONF_DIR/slurm.conf" >/dev/null <<EOF
# written by padlib's scripts/slurm_local.sh: a one-node cluster for tests
ClusterName=padlib
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
KillOnBadExit=1
KillWait=$KILL_WAIT
JobRequeue=1
MinJobAge=600
SchedulerParameters=bf_interval=1
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if ! [ -s /etc/munge/munge.key ]; then
        as_root sh -c 'dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null'
    fi
    as_root chown munge:munge /etc/munge/munge.key && as_root chmod 400 /etc/munge/munge.key
    as_root mkdir -p /run/munge /var/log/munge /var/lib/munge
    as_root chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if ! pgrep -x munged >/dev/null; then
        as_root runuser -u munge -- /usr/sbin/munged || unavailable "munged did not start"
    fi
}

start() {
    if [ "$(node_state)" = idle ] || [ "$(node_state)" = mixed ] || [ "$(node_state)" = allocated ]; then
        say "running: $(sinfo -h -o '%P %D %T %C')"
        rm -f "$STATE/unavailable" 2>/dev/null
        return 0
    fi
    install_packages
    as_root true || unavailable "starting the daemons needs root or password-less sudo"
    write_config
    start_munge
    pgrep -x slurmctld >/dev/null || as_root /usr/sbin/slurmctld || unavailable "slurmctld did not start (/var/log/slurm/slurmctld.log)"
    pgrep -x slurmd >/dev/null || as_root /usr/sbin/slurmd || unavailable "slurmd did not start (/var/log/slurm/slurmd.log)"
    for _ in $(seq 1 60); do
        case "$(node_state)" in
            idle|mixed|allocated) as_root rm -f "$STATE/unavailable"; say "running: $(sinfo -h -o '%P %D %T %C')"; return 0 ;;
            down*|drain*) as_root scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null ;;
        esac
        sleep 1
    done
    unavailable "the node did not become idle within 60 s (sinfo: $(node_state); /var/log/slurm/)"
}

stop() {
    command -v scancel >/dev/null && as_root scancel --full --quiet --state=PENDING,RUNNING,SUSPENDED 2>/dev/null
    as_root pkill -x slurmd; as_root pkill -x slurmctld
    say "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo 2>/dev/null || { say "not running"; exit 3; } ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
