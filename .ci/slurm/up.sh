#!/usr/bin/env bash
# Start a private single-node SLURM cluster (munged, slurmctld, slurmd) on this machine.
#
# usage: .ci/slurm/up.sh STATE_DIR
#
# Everything the cluster writes (config, munge key and socket, spool, pid files, logs) lives in
# STATE_DIR, and the daemons listen on free ports picked here. Client commands (sbatch, squeue, and
# Snakemake's slurm executor) find it through SLURM_CONF (`source STATE_DIR/env.sh`); srun inside a
# job, which Snakemake calls without SLURM_CONF, through a link /etc/slurm/slurm.conf -> STATE_DIR's
# config (made only where no real SLURM config exists; down.sh removes it). So one such cluster at a
# time runs on a host.
# The node offers LBH_SLURM_GPUS (default 2) fake GPUs (gres gpu, type "fake", backed by /dev/null,
# /dev/zero, ...), so jobs that ask for GPUs are scheduled and get CUDA_VISIBLE_DEVICES; they still
# run on the CPU. It advertises at least LBH_SLURM_MEM_MB (default 32768) MB of memory, more than a
# small CI host may have, so the memory requests of profiles/slurm can be scheduled (memory is not
# enforced: no cgroups here).
# Stop it with .ci/slurm/down.sh STATE_DIR (by pid files).
#
# Exit codes: 0 up and the node idle; 3 SLURM or munge cannot be installed or started here (not
# root, no apt-get, apt-get failed: the tests skip saying why, or fail where CI=true);
# 1 any other failure (logs are printed).
set -euo pipefail

state=${1:?usage: up.sh STATE_DIR}
gpus=${LBH_SLURM_GPUS:-2}
min_mem=${LBH_SLURM_MEM_MB:-32768}
node=lbhnode
packages=(slurmctld slurmd slurm-client munge)

log() { printf 'slurm-up: %s\n' "$*" >&2; }

have_all() {
	command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
		command -v sbatch >/dev/null && command -v munged >/dev/null
}

install_packages() {
	if have_all; then
		return 0
	fi
	if ! command -v apt-get >/dev/null; then
		log "SLURM is not installed and there is no apt-get to install it"
		return 3
	fi
	log "installing ${packages[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends "${packages[@]}" >"$state/apt.log" 2>&1; then
		apt-get update -qq >>"$state/apt.log" 2>&1 || true
		if ! apt-get install -y -qq --no-install-recommends "${packages[@]}" >>"$state/apt.log" 2>&1; then
			tail -n 20 "$state/apt.log" >&2
			log "apt-get could not install ${packages[*]}"
			return 3
		fi
	fi
	have_all || {
		log "packages installed but daemons not found on PATH"
		return 3
	}
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_ports() {
	local p=$((20000 + RANDOM % 20000))
	ctld_port=
	slurmd_port=
	while [[ -z $slurmd_port ]]; do
		p=$((p + 1))
		if port_free "$p"; then
			if [[ -z $ctld_port ]]; then ctld_port=$p; else slurmd_port=$p; fi
		fi
	done
}

dump_logs() {
	local f
	for f in "$state"/munge/munged.log "$state"/slurmctld.log "$state"/slurmd.log; do
		[[ -f $f ]] || continue
		printf -- '----- %s (last 30 lines)\n' "$f" >&2
		tail -n 30 "$f" >&2
	done
}

fail() {
	log "$*"
	dump_logs
	exit 1
}

mkdir -p "$state"
state=$(cd "$state" && pwd)
if [[ -f $state/slurmctld.pid ]] && kill -0 "$(cat "$state/slurmctld.pid")" 2>/dev/null; then
	fail "a cluster already runs from $state (stop it with down.sh first)"
fi

if [[ $(id -u) -ne 0 ]]; then
	log "the daemons must be started as root (slurmd runs jobs, munged runs as user munge)"
	exit 3
fi
rc=0
install_packages || rc=$?
if [[ $rc -ne 0 ]]; then exit "$rc"; fi

# munged runs as user munge: it must reach its directories; it wants its socket directory open to
# all (0755) and refuses a key that others can read.
chmod 0755 "$state"
mkdir -p "$state/munge/private" "$state/ctld" "$state/spool"
chown munge:munge "$state/munge" "$state/munge/private"
chmod 0755 "$state/munge"
chmod 0700 "$state/munge/private"
runuser -u munge -- test -w "$state/munge/private" ||
	fail "user munge cannot reach $state (a parent directory is closed to it); use a state dir under /tmp"
key=$state/munge/private/munge.key
if [[ ! -s $key ]]; then
	if command -v mungekey >/dev/null; then
		runuser -u munge -- mungekey --create --keyfile="$key"
	else
		dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
		chown munge:munge "$key"
	fi
	chmod 0600 "$key"
fi
socket=$state/munge/munge.socket
runuser -u munge -- munged --socket="$socket" --key-file="$key" \
	--pid-file="$state/munge/munged.pid" --log-file="$state/munge/munged.log" \
	--seed-file="$state/munge/private/munged.seed" ||
	fail "munged did not start"
for _ in $(seq 50); do
	[[ -S $socket ]] && break
	sleep 0.1
done
munge --socket="$socket" -n | unmunge --socket="$socket" >/dev/null ||
	fail "munge round trip failed"

pick_ports
cpus=$(nproc)
# Advertised memory: 90% of the host's, at least min_mem. SlurmdParameters=config_overrides keeps
# slurmd from draining the node when the advertised memory exceeds what it finds.
mem_total=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
real_mem=$((mem_total * 9 / 10))
if ((real_mem < min_mem)); then real_mem=$min_mem; fi
host=$(hostname -s)

cat >"$state/slurm.conf" <<EOF
# Written by .ci/slurm/up.sh: a throwaway single-node cluster.
ClusterName=lbhci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# Finished jobs stay visible to squeue (the executor polls squeue: no slurmdbd, so no sacct).
MinJobAge=600
ReturnToService=2
SlurmdParameters=config_overrides
SlurmdTimeout=60
KillWait=5
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus RealMemory=$real_mem Gres=gpu:fake:$gpus State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

# Fake GPUs: harmless character devices stand in for GPU device files (SLURM then sets
# CUDA_VISIBLE_DEVICES in a job that gets one; regular files would not do).
fake_devices=(/dev/null /dev/zero /dev/full /dev/urandom)
if ((gpus < 1 || gpus > ${#fake_devices[@]})); then
	fail "LBH_SLURM_GPUS must be 1..${#fake_devices[@]}, not $gpus"
fi
{
	echo "# Fake GPUs for the throwaway cluster of .ci/slurm/up.sh."
	for ((i = 0; i < gpus; i++)); do
		echo "NodeName=$node Name=gpu Type=fake File=${fake_devices[i]}"
	done
} >"$state/gres.conf"

cat >"$state/env.sh" <<EOF
export SLURM_CONF=$state/slurm.conf
EOF
export SLURM_CONF=$state/slurm.conf

# Snakemake's slurm-jobstep executor drops SLURM_CONF before it calls srun inside a job, so srun
# there reads the compiled-in default path: link it to this cluster's config (down.sh removes the
# link). A real file there means a real cluster on this host: leave it alone and stop.
etc_conf=/etc/slurm/slurm.conf
if [[ -e $etc_conf || -L $etc_conf ]]; then
	if [[ ! -L $etc_conf ]]; then
		fail "$etc_conf is a real file (a SLURM installation is configured on this host); not touching it"
	fi
	other=$(readlink "$etc_conf")
	other_pid=$(cat "$(dirname "$other")/slurmctld.pid" 2>/dev/null || true)
	if [[ $other != "$SLURM_CONF" && -n $other_pid ]] && kill -0 "$other_pid" 2>/dev/null; then
		fail "another throwaway cluster runs from $(dirname "$other"); stop it with down.sh first"
	fi
fi
mkdir -p /etc/slurm
ln -sfn "$SLURM_CONF" "$etc_conf"

slurmctld -c -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" -N "$node" || fail "slurmd did not start"

node_state=
for _ in $(seq 150); do
	node_state=$(sinfo -h -N -n "$node" -o %T 2>/dev/null || true)
	[[ $node_state == idle ]] && break
	sleep 0.2
done
if [[ $node_state != idle ]]; then
	scontrol show node "$node" >&2 || true
	fail "node $node is '${node_state:-unknown}', not idle, 30 s after start"
fi
log "cluster up: SLURM_CONF=$SLURM_CONF, node $node ($cpus CPUs, ${real_mem} MB, $gpus fake GPUs), ports $ctld_port/$slurmd_port"
