#!/usr/bin/env python3
"""Drive a DokuWiki the way a browser does: pages, the stylesheet and
script bundles, template images, log in, edit a page, upload a picture,
fetch it back. Usage: dokuwiki_client.py BASE_URL HOST USER PASSWORD
(BASE_URL like http://127.0.0.1:PORT/dokuwiki). Prints one line per step
and exits non-zero at the first step that fails."""
import http.cookiejar
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

base, host, user, password = sys.argv[1:5]
jar = http.cookiejar.CookieJar()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def req(path, data=None, headers=None, follow=True):
    url = path if path.startswith("http") else base + path
    h = {"Host": host}
    h.update(headers or {})
    r = urllib.request.Request(url, data=data, headers=h)
    try:
        resp = opener.open(r, timeout=30)
        status, hdrs, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, body = e.code, e.headers, e.read()
    if follow and status in (301, 302, 303) and hdrs.get("Location"):
        loc = urllib.parse.urljoin(url, hdrs["Location"])
        # the wiki builds absolute URLs from Host: point them back at us
        u = urllib.parse.urlsplit(loc)
        b = urllib.parse.urlsplit(base)
        loc = urllib.parse.urlunsplit((b.scheme, b.netloc, u.path, u.query, ""))
        return req(loc)
    return status, hdrs, body


def expect(what, status, want, got_status, hdrs=None, ctype=None):
    if got_status != want:
        fail("%s: status %s, want %s" % (what, got_status, want))
    if ctype and not (hdrs.get("Content-Type") or "").startswith(ctype):
        fail("%s: Content-Type %r, want %s" % (what, hdrs.get("Content-Type"), ctype))
    print("ok " + what)


def form_value(html, name):
    m = re.search(r'name="%s"[^>]*value="([^"]*)"' % re.escape(name), html)
    return m.group(1) if m else None


# 1. a page, its stylesheet, its scripts, a template image
st, h, b = req("/doku.php?id=start")
expect("start page", st, 200, st, h, "text/html")
html = b.decode("utf-8", "replace")
css = re.search(r'href="([^"]*lib/exe/css\.php[^"]*)"', html)
js = re.search(r'src="([^"]*lib/exe/js\.php[^"]*)"', html)
if not css or not js:
    fail("start page: no css.php/js.php links")
p = urllib.parse.urlsplit(css.group(1).replace("&amp;", "&"))
st, h, b = req(base.split("/", 3)[0] + "//" + base.split("/", 3)[2] + p.path + "?" + p.query)
expect("stylesheet bundle", st, 200, st, h, "text/css")
p = urllib.parse.urlsplit(js.group(1).replace("&amp;", "&"))
st, h, b = req(base.split("/", 3)[0] + "//" + base.split("/", 3)[2] + p.path + "?" + p.query)
expect("script bundle", st, 200, st, h, "application/javascript")
st, h, b = req("/lib/tpl/dokuwiki/images/logo.png")
expect("template image (static, through a symlink)", st, 200, st, h, "image/png")
if b[:8] != b"\x89PNG\r\n\x1a\n":
    fail("template image: not a PNG")

# 2. log in
st, h, b = req("/doku.php?id=start&do=login")
sectok = form_value(b.decode(), "sectok")
data = urllib.parse.urlencode({"id": "start", "do": "login", "sectok": sectok or "", "u": user, "p": password}).encode()
st, h, b = req("/doku.php?id=start", data)
html = b.decode("utf-8", "replace")
if "do=logout" not in html:
    fail("log in: no logout link after logging in (status %d)" % st)
print("ok log in")

# 3. edit a page
page = "cpmtest:p" + uuid.uuid4().hex[:8]
text = "Written through cpm " + uuid.uuid4().hex
st, h, b = req("/doku.php?id=%s&do=edit" % page)
html = b.decode("utf-8", "replace")
fields = {k: form_value(html, k) for k in ("sectok", "date", "changecheck", "target", "rev")}
if fields["sectok"] is None:
    fail("edit form: no sectok")
post = {"id": page, "do[save]": "1", "wikitext": text, "summary": "cpm test", "prefix": "", "suffix": ""}
post.update({k: v for k, v in fields.items() if v is not None})
st, h, b = req("/doku.php?id=%s" % page, urllib.parse.urlencode(post).encode())
st, h, b = req("/doku.php?id=%s" % page)
if text not in b.decode("utf-8", "replace"):
    fail("edit: the saved text is not on the page")
print("ok edit page " + page)

# 4. upload a picture through the media manager, fetch it back
png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64
st, h, b = req("/lib/exe/mediamanager.php?ns=cpmtest")
html = b.decode("utf-8", "replace")
sectok = form_value(html, "sectok")
if sectok is None:
    st, h, b = req("/doku.php?id=%s&do=media&ns=cpmtest" % page)
    sectok = form_value(b.decode("utf-8", "replace"), "sectok")
boundary = uuid.uuid4().hex
name = "up" + uuid.uuid4().hex[:6] + ".png"
parts = []
for k, v in (("sectok", sectok or ""), ("ns", "cpmtest"), ("mediaid", name)):
    parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (boundary, k, v)).encode())
parts.append(('--%s\r\nContent-Disposition: form-data; name="upload"; filename="%s"\r\nContent-Type: image/png\r\n\r\n' % (boundary, name)).encode() + png + b"\r\n")
parts.append(("--%s--\r\n" % boundary).encode())
st, h, b = req("/lib/exe/mediamanager.php?ns=cpmtest&sectok=%s" % (sectok or ""), b"".join(parts),
               {"Content-Type": "multipart/form-data; boundary=" + boundary})
if st not in (200, 302, 303):
    fail("upload: status %d" % st)
st, h, b = req("/lib/exe/fetch.php?media=cpmtest:%s" % name)
expect("fetch uploaded picture", st, 200, st, h, "image/png")
if b != png:
    fail("fetch uploaded picture: %d bytes differ from the %d uploaded" % (len(b), len(png)))
print("ok upload and fetch " + name)
