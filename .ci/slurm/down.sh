#!/usr/bin/env bash
# Stop the cluster started by .ci/slurm/up.sh STATE_DIR: cancel its jobs, then stop slurmd,
# slurmctld and munged by their pid files (never by name). Safe to run twice.
#
# usage: .ci/slurm/down.sh STATE_DIR [--purge]   (--purge also removes STATE_DIR)
set -euo pipefail

state=${1:?usage: down.sh STATE_DIR [--purge]}
purge=${2:-}
[[ -d $state ]] || exit 0
state=$(cd "$state" && pwd)

log() { printf 'slurm-down: %s\n' "$*" >&2; }

alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

pid_of() {
	local f=$1 pid
	[[ -s $f ]] || return 0
	pid=$(tr -dc '0-9' <"$f")
	if alive "$pid"; then printf '%s' "$pid"; fi
}

stop_pid() {
	local name=$1 pid=$2
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		alive "$pid" || {
			log "stopped $name ($pid)"
			return 0
		}
		sleep 0.1
	done
	log "$name ($pid) ignored TERM for 10 s: killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

ctld=$(pid_of "$state/slurmctld.pid")
if [[ -n $ctld && -f $state/slurm.conf ]]; then
	export SLURM_CONF=$state/slurm.conf
	# Cancel what still runs, so no job step outlives the cluster.
	jobs=$(squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null || true)
	if [[ -n $jobs ]]; then
		log "cancelling jobs: $(echo "$jobs" | tr '\n' ' ')"
		# shellcheck disable=SC2086 # one job id per word
		scancel $jobs 2>/dev/null || true
		for _ in $(seq 100); do
			[[ -z $(squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null || true) ]] && break
			sleep 0.1
		done
	fi
fi

stop_pid slurmd "$(pid_of "$state/slurmd.pid")"
stop_pid slurmctld "$ctld"
stop_pid munged "$(pid_of "$state/munge/munged.pid")"

# Remove the /etc/slurm/slurm.conf link up.sh made, if it is still ours.
etc_conf=/etc/slurm/slurm.conf
if [[ -L $etc_conf && $(readlink "$etc_conf") == "$state/slurm.conf" ]]; then
	rm -f "$etc_conf"
fi

if [[ $purge == --purge ]]; then
	rm -rf "$state"
fi
