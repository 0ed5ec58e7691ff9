"""A WSGI application for the recipes etc/recipes/wsgi.json (a uWSGI pool)
and etc/recipes/wsgi-cgi.json (app.cgi, one process per request): GET says
which process answered, POST reads a form, /stream yields its body in
pieces."""
import os
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def parts():
            for i in (1, 2, 3):
                yield b"part %d\n" % i
                if i < 3:
                    time.sleep(1)
        return parts()
    if environ["REQUEST_METHOD"] == "POST":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        name = parse_qs(body.decode()).get("name", [""])[0]
        out = "pid %d got name=%s (%d bytes)\n" % (os.getpid(), name, len(body))
    else:
        out = "hello from WSGI, pid %d script=%s path=%s\n" % (
            os.getpid(), environ.get("SCRIPT_NAME", ""), path)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [out.encode()]
