#!/usr/bin/env python3
"""rawhttp.py PORT DATA [TIMEOUT]: send DATA (with \\r \\n \\t \\0 \\xHH
escapes) to 127.0.0.1:PORT and print what comes back until the server
closes (then a last line <EOF>) or TIMEOUT seconds pass (<TIMEOUT>)."""
import socket
import sys

port, data = int(sys.argv[1]), sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
payload = data.encode("latin-1").decode("unicode_escape").encode("latin-1")
s = socket.create_connection(("127.0.0.1", port))
s.sendall(payload)
s.settimeout(timeout)
out = b""
end = "<TIMEOUT>"
try:
    while True:
        d = s.recv(65536)
        if not d:
            end = "<EOF>"
            break
        out += d
except socket.timeout:
    pass
except ConnectionResetError:
    end = "<RESET>"
sys.stdout.write(out.decode("latin-1"))
sys.stdout.write("\n" + end + "\n")
