#!/usr/bin/env python3
"""A schema-free check of the Dockerfile (hadolint is not in Debian).

    t/dockerfile_check.py [--config-root DIR] [--ldd BINARY] Dockerfile

Checks: only known instructions; FROM with a tag that is not "latest" (or a
digest); at least two stages, the last the runtime; CMD and ENTRYPOINT in
exec form (a JSON array of strings); every COPY --from names an earlier
stage; in the final stage STOPSIGNAL SIGQUIT, a USER that is not root,
HEALTHCHECK in exec form, EXPOSE. The config the final stage copies to
/etc/cpm/cpm.json (read from the build context, the Dockerfile's directory)
has no "user" (a non-root master cannot switch users), listens on the
EXPOSEd port, routes the path the HEALTHCHECK asks for to a "health"
backend, and says "sigterm": "graceful". With --ldd, every library the
binary needs (ldd) belongs to a Debian package (dpkg -S) that the final
stage apt-get installs.

Prints one line per problem and exits 1, or prints "ok" and exits 0.
"""
import json
import os
import re
import shlex
import subprocess
import sys

KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
         "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}


def instructions(text):
    """(line number, INSTRUCTION, arguments), continuation lines joined."""
    out, buf, start = [], "", 0
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue  # a comment inside a continued instruction
        if not buf:
            start = n
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        out.append((start, word.upper(), rest.strip(), word))
        buf = ""
    if buf:
        out.append((start, "<unterminated>", buf, buf))
    return out


def exec_form(args):
    try:
        v = json.loads(args)
    except ValueError:
        return None
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return v
    return None


def flags(args):
    """--name=value flags in front of the arguments, and the rest."""
    f = {}
    while args.startswith("--"):
        tok, _, args = args.partition(" ")
        k, _, v = tok[2:].partition("=")
        f[k] = v
        args = args.strip()
    return f, args


SANITIZER = re.compile(r"/lib(a|ub|l|t)san\.so")


def ldd_paths(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = []
    for line in out.splitlines():
        m = re.search(r"=>\s+(\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m and m.group(1).startswith("/"):  # not linux-vdso: the kernel's
            paths.append(m.group(1))
    return paths


def library_packages(binary):
    """{library path: Debian package} for what ldd says BINARY loads."""
    paths = ldd_paths(binary)
    # a sanitizer build (make SANITIZE=1): its runtime, and what only that
    # runtime loads (libstdc++, libgcc_s), are not the image's: its make
    # has no sanitizer. What the binary itself names (NEEDED) still counts.
    only_runtime = set()
    runtimes = [p for p in paths if SANITIZER.search(p)]
    if runtimes:
        dyn = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
        needed = set(re.findall(r"\(NEEDED\).*\[(.+?)\]", dyn))
        for rt in runtimes:
            only_runtime |= {p for p in ldd_paths(rt) if os.path.basename(p) not in needed}
    pkgs = {}
    for path in paths:
        if SANITIZER.search(path) or path in only_runtime:
            continue
        cands = [path, os.path.realpath(path)]
        # usrmerge: dpkg knows a file by the path its package ships
        for p in list(cands):
            if p.startswith("/usr/"):
                cands.append(p[4:])
            else:
                cands.append("/usr" + p)
        pkg = None
        for p in cands:
            r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
            if r.returncode == 0:
                pkg = r.stdout.split(":")[0].strip()
                break
        pkgs[path] = pkg
    return pkgs


def main(argv):
    ldd = None
    args = argv[1:]
    if len(args) >= 2 and args[0] == "--ldd":
        ldd, args = args[1], args[2:]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path = args[0]
    context = os.path.dirname(os.path.abspath(path))
    errors = []

    def err(n, msg):
        errors.append(f"{path}:{n}: {msg}")

    stages = []  # dicts: name, from line, instructions
    for n, ins, rest, word in instructions(open(path).read()):
        if ins not in KNOWN:
            err(n, f"unknown instruction {word!r}")
            continue
        if word != ins:
            err(n, f"instruction {word!r} not in upper case")
        if ins == "FROM":
            f, rest = flags(rest)
            parts = rest.split()
            image = parts[0] if parts else ""
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            if len(parts) not in (1, 3) or (len(parts) == 3 and not name):
                err(n, f"FROM {rest!r}: expected IMAGE[:TAG] [AS NAME]")
            if "@sha256:" not in image:
                tag = image.rsplit("/", 1)[-1].partition(":")[2]
                if not tag:
                    err(n, f"FROM {image}: no tag (a moving latest)")
                elif tag == "latest":
                    err(n, f"FROM {image}: the tag latest moves")
            stages.append({"name": name, "line": n, "ins": []})
            continue
        if not stages:
            if ins != "ARG":
                err(n, f"{ins} before the first FROM")
            continue
        stages[-1]["ins"].append((n, ins, rest))

    if len(stages) < 2:
        err(1, f"{len(stages)} stage(s): a build stage and a runtime stage expected")
    names = [s["name"] for s in stages]

    for i, st in enumerate(stages):
        for n, ins, rest in st["ins"]:
            if ins in ("CMD", "ENTRYPOINT") and exec_form(rest) is None:
                err(n, f"{ins} not in exec form (a JSON array of strings): {rest}")
            if ins in ("COPY", "ADD"):
                f, _ = flags(rest)
                if "from" in f:
                    src = f["from"]
                    if not (src in names[:i] or (src.isdigit() and int(src) < i)):
                        err(n, f"COPY --from={src}: no earlier stage has that name")

    if not stages:
        print("\n".join(errors))
        return 1
    final = stages[-1]
    last = {}
    for n, ins, rest in final["ins"]:
        last.setdefault(ins, []).append((n, rest))
    fl = final["line"]

    if "STOPSIGNAL" not in last:
        err(fl, "the final stage has no STOPSIGNAL (graceful stop: SIGQUIT)")
    elif last["STOPSIGNAL"][-1][1] != "SIGQUIT":
        err(last["STOPSIGNAL"][-1][0], f"STOPSIGNAL {last['STOPSIGNAL'][-1][1]}: SIGQUIT is cpm's graceful stop")

    if "USER" not in last:
        err(fl, "the final stage has no USER: it would run as root")
    else:
        n, u = last["USER"][-1]
        if u.partition(":")[0] in ("root", "0"):
            err(n, f"USER {u}: root")

    port = None
    if "EXPOSE" not in last:
        err(fl, "the final stage EXPOSEs no port")
    else:
        port = last["EXPOSE"][-1][1].split()[0].partition("/")[0]

    hc_path = hc_port = None
    if "HEALTHCHECK" not in last:
        err(fl, "the final stage has no HEALTHCHECK")
    else:
        n, rest = last["HEALTHCHECK"][-1]
        f, rest = flags(rest)
        kind, _, cmd = rest.partition(" ")
        v = exec_form(cmd.strip()) if kind.upper() == "CMD" else None
        if v is None:
            err(n, f"HEALTHCHECK not CMD in exec form: {rest}")
        else:
            m = re.search(r"/dev/tcp/[^/]+/(\d+)|https?://[^:/]+:(\d+)(/\S*)?", " ".join(v))
            p = re.search(r"GET (/\S*)", " ".join(v))
            if m:
                hc_port = m.group(1) or m.group(2)
            hc_path = (p.group(1) if p else None) or (m.group(3) if m else None)
            if not hc_port or not hc_path:
                err(n, "HEALTHCHECK: cannot tell which port and path it asks")

    # the config copied to /etc/cpm/cpm.json
    conf = None
    for n, rest in last.get("COPY", []):
        f, rest = flags(rest)
        words = shlex.split(rest)
        if "from" not in f and len(words) == 2 and words[1] == "/etc/cpm/cpm.json":
            try:
                conf = json.load(open(os.path.join(context, words[0])))
            except (OSError, ValueError) as e:
                err(n, f"{words[0]}: {e}")
    if conf is None:
        err(fl, "the final stage copies no config from the build context to /etc/cpm/cpm.json")
    else:
        if "user" in conf:
            err(fl, 'the config sets "user": a non-root master cannot switch users')
        if conf.get("sigterm") != "graceful":
            err(fl, 'the config lacks "sigterm": "graceful" (Kubernetes stops with TERM)')
        listen = [x if isinstance(x, str) else x.get("address", "") for x in conf.get("listen", [])]
        ports = {a.rpartition(":")[2] for a in listen}
        if port and port not in ports:
            err(fl, f"EXPOSE {port}: the config listens on {sorted(ports)}")
        if hc_port and hc_port not in ports:
            err(fl, f"HEALTHCHECK asks port {hc_port}: the config listens on {sorted(ports)}")
        if hc_path:
            route = None
            for r in conf.get("routes", []):
                if hc_path.startswith(r.get("prefix", "\0")) and (
                        route is None or len(r["prefix"]) > len(route["prefix"])):
                    route = r
            b = conf.get("backends", {}).get(route["backend"], {}) if route else {}
            if b.get("type") != "health":
                err(fl, f"HEALTHCHECK asks {hc_path}: not routed to a health backend")

    if ldd:
        installed = set()
        for n, rest in last.get("RUN", []):
            for cmd in re.split(r"&&|;|\|\|", rest):
                w = cmd.split()
                if w[:2] == ["apt-get", "install"]:
                    installed |= {x for x in w[2:] if not x.startswith("-")}
        for lib, pkg in library_packages(ldd).items():
            if pkg is None:
                err(fl, f"{ldd} needs {lib}, which no Debian package ships here")
            elif pkg not in installed:
                err(fl, f"{ldd} needs {lib} from {pkg}, which the final stage does not apt-get install")

    if errors:
        print("\n".join(errors))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
