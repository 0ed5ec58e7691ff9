#!/usr/bin/env bats
# What cpm's processes hold when idle: memory that a scan or a library
# touched once stays in a process's RSS for good.
load helpers

# rss_of PID NAME: kB of the mappings whose path contains NAME (smaps)
rss_of() {
	awk -v n="$2" '/^[0-9a-f]+-[0-9a-f]+ / { m = index($0, n) > 0 } /^Rss:/ && m { s += $2 } END { print s + 0 }' "/proc/$1/smaps"
}

@test "idle: the scoreboard is not walked whole, and a cpm without TLS does not start OpenSSL" {
	CPM_WORKERS=2 cpm_config
	# a status route next to the CGI one
	sed -i 's|"backends": {|"backends": { "st": { "type": "status" },|; s|"routes": \[|"routes": [ { "prefix": "/status", "backend": "st" },|' "$BATS_TEST_TMPDIR/cpm.json"
	cpm_start
	for i in 1 2 3 4 5 6; do
		curl -sf -o /dev/null "$(url /env.sh)"
		curl -sf -o /dev/null "$(url /status)"
	done
	for w in $(workers_of "$CPM_PID"); do
		shmem=$(awk '/^RssShmem:/ { print $2 }' "/proc/$w/status")
		echo "worker $w RssShmem $shmem kB" >&3
		# the slots in use and the pool table's first pages, not 2,112 slots
		[ "$shmem" -le 512 ]
	done
	crypto=$(rss_of "$CPM_PID" libcrypto)
	echo "master: libcrypto $crypto kB resident" >&3
	# loading it (relocations, constructors): about 1.4 MiB; with its
	# random generator started, 3.4 MiB
	[ "$crypto" -le 2048 ]
}
