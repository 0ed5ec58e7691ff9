# Helpers for t/tls.bats: a throwaway CA and its certificates made with the
# openssl CLI, and clients that look at what a TLS listener presents.

# pki_make DIR: a CA and the certificates the tests use, in DIR:
#   ca.pem ca.key         the CA (ECDSA P-256)
#   a.pem a.key           "localhost" + IP 127.0.0.1, serial 1001 (ECDSA)
#   a2.pem a2.key         the same names, a new key, serial 1002 (a renewal)
#   b.pem b.key           "b.test" and "*.b.test", serial 2001 (RSA 2048)
#   expired.pem           "localhost" with a.key, valid in January 2025 only,
#                         serial 1003
#   other.key             a key no certificate has (a mismatch with a.pem)
#   int.pem int.key       an intermediate CA under ca.pem
#   c.pem c.key           "localhost" + 127.0.0.1 issued by int.pem, serial 3001
#   c-full.pem            c.pem then int.pem (what "certificate" should hold)
pki_make() {
	local d=$1
	mkdir -p "$d"
	(
		set -e
		cd "$d"
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
			-days 30 -subj "/CN=cpm test CA" -addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
		pki_leaf a 1001 localhost "DNS:localhost,IP:127.0.0.1"
		pki_leaf a2 1002 localhost "DNS:localhost,IP:127.0.0.1"
		pki_leaf b 2001 b.test "DNS:b.test,DNS:*.b.test" rsa:2048
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key 2>/dev/null
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -out int.csr \
			-subj "/CN=cpm test intermediate" 2>/dev/null
		printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >int.ext
		openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -set_serial 0x100 -days 30 -extfile int.ext \
			-out int.pem 2>/dev/null
		rm -f int.csr int.ext
		PKI_CA=int pki_leaf c 3001 localhost "DNS:localhost,IP:127.0.0.1"
		cat c.pem int.pem >c-full.pem
		# an expired certificate: openssl ca is the CLI that takes a start
		# and an end date (x509 -req in OpenSSL 3.0 only takes -days)
		mkdir -p db
		: >db/index.txt
		echo 1003 >db/serial
		cat >db/ca.cnf <<'CNF'
[ca]
default_ca = c
[c]
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
[leaf]
subjectAltName = DNS:localhost,IP:127.0.0.1
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
CNF
		openssl req -new -key a.key -subj /CN=localhost -out db/expired.csr 2>/dev/null
		openssl ca -batch -config db/ca.cnf -cert ca.pem -keyfile ca.key -in db/expired.csr -out expired.pem \
			-startdate 20250101000000Z -enddate 20250201000000Z -extensions leaf -notext 2>/dev/null
	)
}

# pki_leaf NAME SERIAL CN SAN [rsa:BITS]: NAME.key and NAME.pem signed by
# the CA in the current directory (ca, or $PKI_CA), valid for 30 days
pki_leaf() {
	local name=$1 serial=$2 cn=$3 san=$4 alg=${5:-ec}
	if [ "$alg" = ec ]; then
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key" 2>/dev/null
	else
		openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${alg#rsa:}" -out "$name.key" 2>/dev/null
	fi
	openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr" 2>/dev/null
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$name.ext"
	local ca=${PKI_CA:-ca}
	openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -set_serial "0x$serial" -days 30 \
		-extfile "$name.ext" -out "$name.pem" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
}

# pki_scanner_cert DIR: DIR/t.pem and t.key (CA in DIR), a certificate a
# TLS scanner has no reason to complain about: a year long, a random
# 128-bit serial, key usage, a CRL address (never fetched)
pki_scanner_cert() {
	(
		set -e
		cd "$1"
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out t.key 2>/dev/null
		openssl req -new -key t.key -subj /CN=localhost -out t.csr 2>/dev/null
		printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
			"keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
			"crlDistributionPoints=URI:http://127.0.0.1:9/ca.crl" >t.ext
		openssl x509 -req -in t.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
			-days 365 -extfile t.ext -out t.pem 2>/dev/null
		rm -f t.csr t.ext
	)
}

# presented PORT [SERVERNAME]: the certificate 127.0.0.1:PORT presents to a
# new connection (with SNI SERVERNAME, or none), as "serial=... subject=..."
presented() {
	local sni=(-noservername)
	[ -z "${2:-}" ] || sni=(-servername "$2")
	openssl s_client -connect "127.0.0.1:$1" "${sni[@]}" </dev/null 2>/dev/null |
		openssl x509 -noout -serial -subject -nameopt RFC2253 2>/dev/null | tr '\n' ' ' | sed 's/ $//'
}

# serial_is PORT SERIAL: a new connection gets the certificate SERIAL
serial_is() {
	[[ "$(presented "$1")" == "serial=$2 "* ]]
}

# tls_load PORT CAFILE PATH STOPFILE MAXSECS: HTTPS requests for PATH (host
# localhost, verified against CAFILE) until STOPFILE exists or MAXSECS
# pass; 2 threads open a new connection per request, 2 keep theirs alive
# (reconnecting when the server says Connection: close). Prints one JSON
# object: ok, failed (any error, a status other than 200, another body),
# requests, fresh_serials and ka_serials (requests seen per certificate
# serial on new and on kept connections), errors (the first few).
tls_load() {
	python3 - "$@" <<'PY'
import http.client, json, os, socket, ssl, sys, threading, time
port, cafile, path, stop, maxsecs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
ctx = ssl.create_default_context(cafile=cafile)
deadline = time.time() + maxsecs
lock = threading.Lock()
st = {"ok": 0, "failed": 0, "requests": 0, "fresh_serials": {}, "ka_serials": {}, "errors": []}
first = []

class Conn(http.client.HTTPSConnection):
    def connect(self):  # to 127.0.0.1, verified as "localhost"
        sock = socket.create_connection(("127.0.0.1", port), self.timeout)
        self.sock = ctx.wrap_socket(sock, server_hostname="localhost")

def count(ok, serial, kind, why=None):
    with lock:
        st["requests"] += 1
        if ok:
            st["ok"] += 1
            d = st[kind + "_serials"]
            d[serial] = d.get(serial, 0) + 1
        else:
            st["failed"] += 1
            if len(st["errors"]) < 8:
                st["errors"].append(why)

def client(keep):
    c = None
    while time.time() < deadline and not os.path.exists(stop):
        try:
            if c is None:
                c = Conn("localhost", port, timeout=5)
                c.connect()
            serial = c.sock.getpeercert()["serialNumber"]
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
            with lock:
                if not first:
                    first.append(body)
            if r.status == 200 and body == first[0]:
                count(True, serial, "ka" if keep else "fresh")
            else:
                count(False, serial, "", "%d %r" % (r.status, body[:60]))
            if not keep or r.getheader("Connection", "").lower() == "close":
                c.close()
                c = None
        except Exception as e:
            count(False, None, "", ("keep-alive " if keep else "new ") + repr(e))
            if c is not None:
                c.close()
            c = None

ts = [threading.Thread(target=client, args=(k,)) for k in (False, False, True, True)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(st))
PY
}
