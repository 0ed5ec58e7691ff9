#!/usr/bin/env bats
# The Dockerfile and the Kubernetes samples, without Docker or a cluster:
# t/dockerfile_check.py and t/k8s_check.py (each also shown failing on a
# broken copy), the runtime stage's packages against ldd, and the image's
# config and HEALTHCHECK command run for real: cpm as a non-root master,
# the way the container runs it.
load helpers

teardown_extra() { :; }
eval "$(declare -f teardown | sed '1s/^teardown/helpers_teardown/')"
teardown() {
	local rc=0
	helpers_teardown || rc=1
	[ -z "${WORK:-}" ] || rm -rf "$WORK"
	return $rc
}

# a directory open to all (nobody runs cpm from it) with the image's files
# where the Dockerfile puts them, under $WORK
image_tree() {
	WORK=$(mktemp -d /tmp/cpm-image.XXXXXX)
	chmod 0755 "$WORK"
	mkdir -p "$WORK/usr/share/cpm/examples" "$WORK/run/cpm"
	cp "$ROOT/examples/hello" "$ROOT/examples/index.sh" "$ROOT/examples/hello.sh" "$ROOT/examples/form.sh" \
		"$ROOT/examples/stream.sh" "$ROOT/examples/env.pl" "$WORK/usr/share/cpm/examples/"
	chown nobody "$WORK/run/cpm"
}

@test "the Dockerfile passes t/dockerfile_check.py, and the runtime stage installs every library ldd ./cpm names" {
	run python3 "$ROOT/t/dockerfile_check.py" --ldd "$CPM" "$ROOT/Dockerfile"
	assert_success
	assert_output ok
	# what the check maps (so a library it cannot map is not silently ok)
	run ldd "$CPM"
	assert_output --partial libjansson.so.4
	assert_output --partial libssl.so.3
}

# dockerfile_broken SED-EXPRESSION MESSAGE: a copy of the Dockerfile (and
# its config) changed by SED-EXPRESSION fails the check with MESSAGE
dockerfile_broken() {
	local d=$BATS_TEST_TMPDIR/ctx
	rm -rf "$d" && mkdir -p "$d/etc"
	cp "$ROOT/etc/cpm-container.json" "$d/etc/"
	sed "$1" "$ROOT/Dockerfile" >"$d/Dockerfile"
	run python3 "$ROOT/t/dockerfile_check.py" --ldd "$CPM" "$d/Dockerfile"
	assert_failure
	assert_output --partial "$2"
}

@test "t/dockerfile_check.py fails on a broken Dockerfile: each rule" {
	dockerfile_broken '/^STOPSIGNAL/d' 'no STOPSIGNAL'
	dockerfile_broken 's/^STOPSIGNAL SIGQUIT/STOPSIGNAL SIGTERM/' 'SIGQUIT is'
	dockerfile_broken 's/^CMD \[.*/CMD -c \/etc\/cpm\/cpm.json/' 'CMD not in exec form'
	dockerfile_broken 's/^ENTRYPOINT \[.*/ENTRYPOINT \/usr\/sbin\/cpm/' 'ENTRYPOINT not in exec form'
	dockerfile_broken 's/^FROM debian:bookworm-slim AS runtime/FROM debian AS runtime/' 'no tag'
	dockerfile_broken 's/^FROM debian:bookworm-slim AS build/FROM debian:latest AS build/' 'latest moves'
	dockerfile_broken 's/--from=build/--from=builder/' 'no earlier stage has that name'
	dockerfile_broken 's/^USER .*/USER root/' 'USER root'
	dockerfile_broken '/^USER/d' 'no USER'
	dockerfile_broken '/^HEALTHCHECK/,/CMD \["bash"/d' 'no HEALTHCHECK'
	dockerfile_broken 's/^EXPOSE 8080/EXPOSE 8000/' 'EXPOSE 8000'
	dockerfile_broken 's/ libssl3 / /' 'libssl.so.3 from libssl3, which the final stage does not apt-get install'
	dockerfile_broken 's/ libjansson4 / /' 'from libjansson4'
	dockerfile_broken 's/^EXPOSE/EXPOS/' "unknown instruction 'EXPOS'"
	dockerfile_broken 's|^COPY etc/cpm-container.json|COPY etc/nothing.json|' 'nothing.json'
	dockerfile_broken '/^FROM debian:bookworm-slim AS build/,/^RUN make/d' '1 stage(s)'
	# the config it copies
	local d=$BATS_TEST_TMPDIR/ctx
	sed -i 's/"sigterm": "graceful",/"user": "cpm",/' "$d/etc/cpm-container.json"
	cp "$ROOT/Dockerfile" "$d/"
	run python3 "$ROOT/t/dockerfile_check.py" "$d/Dockerfile"
	assert_failure
	assert_output --partial 'sets "user"'
	assert_output --partial '"sigterm": "graceful"'
}

@test "the image's config as the container runs it: a non-root master, the HEALTHCHECK command, STOPSIGNAL's graceful stop within docker stop's 10 s" {
	image_tree
	CPM_PORT=$(free_port)
	local cfg=$WORK/cpm.json
	sed -e "s|0.0.0.0:8080|127.0.0.1:$CPM_PORT|" -e "s|/usr/share/cpm/examples|$WORK/usr/share/cpm/examples|" \
		-e "s|/run/cpm/|$WORK/run/cpm/|" "$ROOT/etc/cpm-container.json" >"$cfg"
	run "$CPM" -t -c "$cfg"
	assert_success
	# USER in the image: not root, and the config has no "user"
	cp "$CPM" "$WORK/cpm"
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$WORK/cpm" -c "$cfg" \
		>"$BATS_TEST_TMPDIR/stdout.log" 2>"$BATS_TEST_TMPDIR/stderr.log" 3>&- &
	CPM_PID=$!
	wait_listening "$CPM_PORT" "$CPM_PID"
	run ps -o user= -p "$CPM_PID"
	assert_output nobody
	run curl -s "$(url /hello.sh)"
	assert_output "Hello, world!"
	run curl -s -o /dev/null -w '%{http_code}' "$(url /)"
	assert_output 200
	# both logs on stderr ("-"), where docker logs and kubectl logs look
	within 5 grep -q '"GET /hello.sh HTTP/1.1" 200' "$BATS_TEST_TMPDIR/stderr.log"
	grep -q 'master (pid' "$BATS_TEST_TMPDIR/stderr.log"
	# the control socket where the Kubernetes sample says (cpm -s reload)
	run "$CPM" -s reload -c "$cfg"
	assert_success
	# the HEALTHCHECK command, as Docker runs it (exec form), on this port
	local -a hc
	mapfile -t hc < <(python3 -c '
import json, re, sys
t = open(sys.argv[1]).read()
m = re.search(r"^ +CMD (\[.*\])$", t[t.index("\nHEALTHCHECK"):], re.M)
for a in json.loads(m.group(1)): print(a.replace("/8080", "/" + sys.argv[2]))' "$ROOT/Dockerfile" "$CPM_PORT")
	[ "${hc[0]}" = bash ]
	run "${hc[@]}"
	assert_success
	# docker stop: STOPSIGNAL, then KILL after 10 s
	local sig t0 t1
	sig=$(sed -n 's/^STOPSIGNAL SIG//p' "$ROOT/Dockerfile")
	t0=$(date +%s%N)
	kill -"$sig" "$CPM_PID"
	# draining: the HEALTHCHECK now fails (503) while requests are served
	within 1 eval '! "${hc[@]}"'
	run curl -s "$(url /hello.sh)"
	assert_output "Hello, world!"
	wait_exit "$CPM_PID" 10
	t1=$(date +%s%N)
	assert_equal "$EXIT_STATUS" 0
	CPM_PID=
	local ms=$(((t1 - t0) / 1000000))
	echo "# docker stop equivalent: QUIT to exit in $ms ms (drain_delay 2s)" >&3
	[ "$ms" -ge 2000 ]
	[ "$ms" -lt 10000 ]
}

@test "etc/kubernetes passes t/k8s_check.py, its cpm.json passes cpm -t" {
	image_tree
	run python3 "$ROOT/t/k8s_check.py" --cpm "$CPM" --map "/usr/share/cpm/examples=$WORK/usr/share/cpm/examples" \
		--map "/run/cpm/=$WORK/run/cpm/" "$ROOT"/etc/kubernetes/*.yaml
	assert_success
	assert_output ok
}

# k8s_broken SED-EXPRESSION MESSAGE: a changed copy fails with MESSAGE
k8s_broken() {
	sed "$1" "$ROOT/etc/kubernetes/cpm.yaml" >"$BATS_TEST_TMPDIR/k.yaml"
	run python3 "$ROOT/t/k8s_check.py" --cpm "$CPM" --map "/usr/share/cpm/examples=$ROOT/examples" \
		--map "/run/cpm/=$BATS_TEST_TMPDIR/" "$BATS_TEST_TMPDIR/k.yaml"
	assert_failure
	assert_output --partial "$2"
}

@test "t/k8s_check.py fails on a broken sample: each rule" {
	k8s_broken 's/terminationGracePeriodSeconds: 60/terminationGracePeriodSeconds: 45/' 'terminationGracePeriodSeconds 45 is not more than drain_delay + graceful_timeout (45 s)'
	k8s_broken 's/"drain_delay": "15s"/"drain_delay": "10s"/' 'drain_delay 10000 ms is not longer than the readiness probe needs to fail'
	k8s_broken 's/"sigterm": "graceful"/"sigterm": "fast"/' '"sigterm": "graceful" expected'
	k8s_broken 's/"workers": 2/"workers": "two"/' 'cpm -t: cpm:'
	k8s_broken 's/"workers": 2,/"workers": 2/' 'not JSON'
	k8s_broken 's/maxUnavailable: 0/maxUnavailable: 1/' 'maxUnavailable 0 expected'
	k8s_broken 's/maxSurge: 1/maxSurge: 0/' 'maxSurge must be at least 1'
	k8s_broken '0,/port: http$/s//port: 8081/' "readinessProbe: port 8081 is none of the container's ports"
	k8s_broken 's/targetPort: http/targetPort: web/' "targetPort 'web' is no container port"
	k8s_broken '/^kind: Service$/,$s/app.kubernetes.io\/name: cpm/app.kubernetes.io\/name: other/' 'matches no Deployment'
	k8s_broken '/matchLabels:/,/strategy:/s/name: cpm/name: other/' 'does not match the template'
	k8s_broken 's|^          image: .*||' 'no image'
	k8s_broken 's/runAsNonRoot: true/runAsNonRoot: false/' 'runAsNonRoot is not true'
	k8s_broken 's/runAsUser: 10001/runAsUser: 0/' 'a numeric non-root uid expected'
	k8s_broken 's|mountPath: /tmp|mountPath: /scratch|' 'no writable emptyDir at /tmp'
	k8s_broken 's|mountPath: /run/cpm|mountPath: /run/other|' 'no writable emptyDir at /run/cpm (control)'
	k8s_broken 's|mountPath: /etc/cpm$|mountPath: /etc/cpm/cpm.json\n              subPath: cpm.json|' 'mounted with subPath'
	k8s_broken '/^metadata:/,/^  labels:/s/^  name: cpm$//' 'no metadata.name'
	k8s_broken 's/^kind: Service$/kind:/' 'no kind'
	k8s_broken 's/^    {$/    {:/' 'not JSON'
	k8s_broken 's/^  replicas: 2$/  replicas: [2/' 'YAML:'
}

@test "make test-deps installs what .ci/run installs: every DEPS and TESTDEPS package is in .ci/run's list" {
	local p missing=""
	for p in $(make -s --no-print-directory -C "$ROOT" -f Makefile -f - <<<'print-deps: ; @echo $(DEPS) $(TESTDEPS)' print-deps); do
		grep -qE "^pkgs=\"(.* )?$p( |\")" "$ROOT/.ci/run" || missing="$missing $p"
	done
	assert_equal "$missing" ""
}
