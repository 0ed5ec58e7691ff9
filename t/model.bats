#!/usr/bin/env bats
# The stateful, randomized model test (t/model/run.py) with a short budget:
# MODEL_SEED (default: the time, printed) and MODEL_BATS_SECONDS (20).
# `make fuzz` runs it for MODEL_SECONDS instead.
load helpers

@test "random valid, invalid, partial, pipelined and abandoned requests on kept-alive connections match the model" {
	seed=${MODEL_SEED:-$(date +%s)}
	secs=${MODEL_BATS_SECONDS:-20}
	TMPDIR=$BATS_TEST_TMPDIR run python3 "$ROOT/t/model/run.py" "$seed" "$secs" --cpm "$CPM"
	echo "rerun: python3 t/model/run.py $seed $secs"
	assert_success
	assert_output --partial "model: ok"
}

@test "the same over TLS, with stalled handshakes, garbage for TLS records, close_notify mid-request and records cut anywhere" {
	seed=${MODEL_SEED:-$(date +%s)}
	secs=${MODEL_BATS_SECONDS:-20}
	TMPDIR=$BATS_TEST_TMPDIR run python3 "$ROOT/t/model/run.py" "$seed" "$secs" --cpm "$CPM" --tls
	echo "rerun: python3 t/model/run.py $seed $secs --tls"
	assert_success
	assert_output --partial "model: ok"
}
