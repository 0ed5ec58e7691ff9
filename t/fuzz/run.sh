#!/usr/bin/env bash
# Build and run every libFuzzer target for SECONDS each (default 10),
# seeded from the conformance corpus. Needs clang with libFuzzer
# (Debian: clang, libclang-rt-14-dev).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-10}
cc=${FUZZ_CC:-clang}
flags="-g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -DCPM_VERSION=\"fuzz\""
proto="$root/protocol/http_parser.c $root/protocol/http_chunked.c $root/protocol/cgi_response.c $root/protocol/fcgi.c $root/protocol/cidr.c \
	$root/protocol/http_auth.c $root/protocol/url.c $root/protocol/http_file.c $root/protocol/http_response.c \
	$root/protocol/proxy.c $root/protocol/forwarded.c"
mgr="$root/manager/config.c $root/manager/jsonpos.c $root/manager/log.c $root/manager/process.c $root/manager/htpasswd.c \
	$root/manager/tls.c $root/manager/tls_shared.c"
corpus_src=$root/../shared/conformance/gunicorn-requests
for t in http_parser chunked cgi_response fcgi config cidr http_file proxy forwarded; do
	bin=$here/fuzz_$t
	extra=""
	[ $t = config ] && extra="$mgr -ljansson -lcrypt -lssl -lcrypto"
	# shellcheck disable=SC2086
	$cc $flags -o "$bin" "$here/fuzz_$t.c" $proto $extra
	corpus=$here/corpus-$t
	mkdir -p "$corpus"
	if [ $t = http_parser ] && [ -d "$corpus_src" ]; then
		python3 - "$corpus_src" "$corpus" <<'PY'
import os, sys, re
src, dst = sys.argv[1], sys.argv[2]
def decode(b):
    b = b.replace(b"\n", b"").replace(b"\\r\\n", b"\r\n").replace(b"\\0", b"\0")
    b = b.replace(b"\\n", b"\n").replace(b"\\t", b"\t")
    return re.sub(rb"\\x([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), b)
for kind in ("valid", "invalid"):
    for f in os.listdir(os.path.join(src, kind)):
        if f.endswith(".http"):
            open(os.path.join(dst, kind + "-" + f), "wb").write(decode(open(os.path.join(src, kind, f), "rb").read()))
PY
	fi
	[ $t = config ] && cp "$root/etc/cpm.json" "$corpus/" 2>/dev/null || true
	[ $t = http_file ] && cp /etc/mime.types "$corpus/" 2>/dev/null || true
	echo "fuzz_$t: ${secs}s"
	"$bin" -max_total_time="$secs" -max_len=8192 "$corpus" 2>&1 | tail -n 2
done
