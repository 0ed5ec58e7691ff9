#!/usr/bin/env python3
"""A schema-free check of the Kubernetes samples (etc/kubernetes/*.yaml).

    t/k8s_check.py [--cpm BINARY] [--map FROM=TO]... FILE.yaml...

Every YAML document parses and has apiVersion, kind and metadata.name. A
Deployment's selector matches its pod template's labels, every container
has a name and an image, every probe's port is one of the container's
ports, the rolling update never takes a ready pod away first
(maxUnavailable 0, maxSurge >= 1), the pod runs as a numeric non-root
user, a read-only root filesystem has writable volumes where cpm writes
(/tmp or $TMPDIR for spill files, the control socket's and pidfile's
directories), the ConfigMap holding the -c file is mounted as a directory
(not subPath: the kubelet updates only those). A Service's selector
matches a Deployment's pods and its targetPort is a container port. The
cpm.json in a ConfigMap parses as JSON, passes `cpm -t -c` (with --cpm;
--map rewrites paths in it first, for files that are only in the image),
says "sigterm": "graceful" (Kubernetes stops with TERM), has drain_delay
longer than the readiness probe needs to fail (periodSeconds *
failureThreshold) and a terminationGracePeriodSeconds longer than
drain_delay + graceful_timeout.

Prints one line per problem and exits 1, or prints "ok" and exits 0.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml


def duration_ms(v):
    """cpm's durations: seconds, or "500ms", "30s", "5m", "1h"."""
    if isinstance(v, int):
        return v * 1000
    m = re.fullmatch(r"(\d+)(ms|s|m|h|)", str(v))
    if not m:
        raise ValueError(f"not a duration: {v!r}")
    return int(m.group(1)) * {"ms": 1, "s": 1000, "": 1000, "m": 60000, "h": 3600000}[m.group(2)]


def sub(labels, sel):
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def main(argv):
    cpm, maps, files = None, [], []
    it = iter(argv[1:])
    for a in it:
        if a == "--cpm":
            cpm = next(it)
        elif a == "--map":
            f, _, t = next(it).partition("=")
            maps.append((f, t))
        else:
            files.append(a)
    if not files:
        print("usage: k8s_check.py [--cpm BINARY] [--map FROM=TO]... FILE.yaml...", file=sys.stderr)
        return 2
    errors = []

    def err(where, msg):
        errors.append(f"{where}: {msg}")

    docs = []
    for f in files:
        try:
            for i, d in enumerate(yaml.safe_load_all(open(f))):
                if d is None:
                    continue
                where = f"{f}: document {i + 1}"
                if not isinstance(d, dict):
                    err(where, "not a mapping")
                    continue
                for k in ("apiVersion", "kind"):
                    if not isinstance(d.get(k), str) or not d[k]:
                        err(where, f"no {k}")
                name = (d.get("metadata") or {}).get("name")
                if not name:
                    err(where, "no metadata.name")
                where = f"{f}: {d.get('kind')}/{name}"
                docs.append((where, d))
        except yaml.YAMLError as e:
            err(f, f"YAML: {e}")
    configmaps = {(d.get("metadata") or {}).get("name"): (w, d) for w, d in docs if d.get("kind") == "ConfigMap"}
    deployments = [(w, d) for w, d in docs if d.get("kind") == "Deployment"]

    for w, d in configmaps.values():
        if d.get("apiVersion") != "v1":
            err(w, f"apiVersion {d.get('apiVersion')}: v1 expected")
        if not isinstance(d.get("data"), dict):
            err(w, "no data")

    pods = []  # (where, template labels, containers)
    for w, d in deployments:
        if d.get("apiVersion") != "apps/v1":
            err(w, f"apiVersion {d.get('apiVersion')}: apps/v1 expected")
        spec = d.get("spec") or {}
        tpl = spec.get("template") or {}
        labels = (tpl.get("metadata") or {}).get("labels") or {}
        sel = (spec.get("selector") or {}).get("matchLabels") or {}
        if not sub(labels, sel):
            err(w, f"spec.selector.matchLabels {sel} does not match the template's labels {labels}")
        st = spec.get("strategy") or {}
        ru = st.get("rollingUpdate") or {}
        if st.get("type", "RollingUpdate") != "RollingUpdate" or ru.get("maxUnavailable") not in (0, "0%"):
            err(w, "strategy: RollingUpdate with maxUnavailable 0 expected (a ready pod stops only "
                "once its replacement is ready)")
        if not (isinstance(ru.get("maxSurge"), int) and ru["maxSurge"] >= 1 or
                isinstance(ru.get("maxSurge"), str) and ru["maxSurge"] not in ("0", "0%")):
            err(w, "strategy.rollingUpdate.maxSurge must be at least 1 with maxUnavailable 0")
        pspec = tpl.get("spec") or {}
        psc = pspec.get("securityContext") or {}
        volumes = {v.get("name"): v for v in pspec.get("volumes") or []}
        grace = pspec.get("terminationGracePeriodSeconds", 30)
        containers = pspec.get("containers") or []
        if not containers:
            err(w, "no containers")
        pods.append((w, labels, containers))
        for c in containers:
            cw = f"{w}: container {c.get('name')}"
            if not c.get("name"):
                err(cw, "no name")
            if not c.get("image"):
                err(cw, "no image")
            csc = {**psc, **(c.get("securityContext") or {})}
            if csc.get("runAsNonRoot") is not True:
                err(cw, "securityContext.runAsNonRoot is not true")
            if not isinstance(csc.get("runAsUser"), int) or csc["runAsUser"] == 0:
                err(cw, "securityContext.runAsUser: a numeric non-root uid expected "
                    "(runAsNonRoot cannot verify a user name)")
            ports = c.get("ports") or []
            names = {p.get("name") for p in ports if p.get("name")}
            numbers = {p.get("containerPort") for p in ports}
            if not numbers or None in numbers:
                err(cw, "a port without containerPort, or none")
            probes = {}
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                p = c.get(kind)
                if p is None:
                    continue
                probes[kind] = p
                h = p.get("httpGet") or p.get("tcpSocket")
                if not h:
                    err(cw, f"{kind}: neither httpGet nor tcpSocket")
                    continue
                if h.get("port") not in names | numbers:
                    err(cw, f"{kind}: port {h.get('port')!r} is none of the container's ports "
                        f"{sorted(map(str, names | numbers))}")
            if "readinessProbe" not in probes:
                err(cw, "no readinessProbe: a Service sends traffic to it as soon as it starts")

            mounts = {m.get("mountPath"): m for m in c.get("volumeMounts") or []}
            args = (c.get("command") or []) + (c.get("args") or [])
            cfg_path = args[args.index("-c") + 1] if "-c" in args[:-1] else "/etc/cpm/cpm.json"
            cfg_dir = os.path.dirname(cfg_path)
            m = mounts.get(cfg_dir) or mounts.get(cfg_path)
            if not m:
                err(cw, f"nothing is mounted at {cfg_dir} (the config {cfg_path})")
                continue
            if m.get("subPath"):
                err(cw, f"{m['mountPath']} is mounted with subPath: the kubelet never updates it")
            vol = volumes.get(m.get("name")) or {}
            cmname = (vol.get("configMap") or {}).get("name")
            if cmname not in configmaps:
                err(cw, f"{cfg_dir}: volume {m.get('name')} is no ConfigMap of these files")
                continue
            key = os.path.basename(cfg_path)
            cmw, cm = configmaps[cmname]
            text = (cm.get("data") or {}).get(key)
            if text is None:
                err(cmw, f"no data.{key} (the container's -c {cfg_path})")
                continue
            try:
                conf = json.loads(text)
            except ValueError as e:
                err(cmw, f"data.{key}: not JSON: {e}")
                continue
            if conf.get("sigterm") != "graceful":
                err(cmw, f'data.{key}: "sigterm": "graceful" expected: Kubernetes stops a pod with TERM, '
                    "which is otherwise cpm's fast stop")
            try:
                drain = duration_ms(conf.get("drain_delay", 0))
                gto = duration_ms(conf.get("graceful_timeout", 30))
            except ValueError as e:
                err(cmw, f"data.{key}: {e}")
                continue
            rp = probes.get("readinessProbe")
            if rp:
                need = rp.get("periodSeconds", 10) * rp.get("failureThreshold", 3) * 1000
                if drain <= need:
                    err(cmw, f"data.{key}: drain_delay {drain} ms is not longer than the readiness probe "
                        f"needs to fail (periodSeconds * failureThreshold = {need} ms)")
            if not isinstance(grace, int) or grace * 1000 <= drain + gto:
                err(w, f"terminationGracePeriodSeconds {grace} is not more than drain_delay + "
                    f"graceful_timeout ({(drain + gto) / 1000:g} s): the kubelet would KILL in-flight requests")

            # where cpm writes, on a read-only root filesystem
            if csc.get("readOnlyRootFilesystem"):
                env = {e.get("name"): e.get("value") for e in c.get("env") or []}
                need_dirs = {env.get("TMPDIR") or "/tmp": "spill files (request bodies, slow responses)"}
                for k in ("control", "pidfile"):
                    if conf.get(k):
                        need_dirs[os.path.dirname(conf[k])] = k
                for k in ("access_log", "error_log"):
                    if conf.get(k) not in (None, "-"):
                        need_dirs[os.path.dirname(conf[k])] = k
                for dpath, why in need_dirs.items():
                    mm = mounts.get(dpath)
                    if not mm or mm.get("readOnly") or not (volumes.get(mm.get("name")) or {}).get("emptyDir"):
                        err(cw, f"readOnlyRootFilesystem: no writable emptyDir at {dpath} ({why})")

            if cpm:
                for f, t in maps:
                    text = text.replace(f, t)
                with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as tf:
                    tf.write(text)
                try:
                    r = subprocess.run([cpm, "-t", "-c", tf.name], capture_output=True, text=True)
                    if r.returncode != 0:
                        err(cmw, f"data.{key}: cpm -t: {(r.stdout + r.stderr).strip()}")
                finally:
                    os.unlink(tf.name)

    for w, d in docs:
        if d.get("kind") != "Service":
            continue
        if d.get("apiVersion") != "v1":
            err(w, f"apiVersion {d.get('apiVersion')}: v1 expected")
        spec = d.get("spec") or {}
        sel = spec.get("selector") or {}
        match = [(pw, cs) for pw, labels, cs in pods if sub(labels, sel)]
        if not match:
            err(w, f"selector {sel} matches no Deployment's pods")
        for p in spec.get("ports") or []:
            if not p.get("port"):
                err(w, "a port without port")
            tp = p.get("targetPort", p.get("port"))
            for pw, cs in match:
                known = {x.get(k) for c in cs for x in c.get("ports") or [] for k in ("name", "containerPort")}
                if tp not in known:
                    err(w, f"targetPort {tp!r} is no container port of {pw}")

    if not deployments:
        err(",".join(files), "no Deployment")
    if errors:
        print("\n".join(errors))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
