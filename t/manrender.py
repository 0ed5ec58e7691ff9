#!/usr/bin/env python3
"""Render each manual page with mandoc and with groff (what man(1) uses on
Debian) and check the text a reader sees, which mandoc -Tlint does not: a
quote opened inside another (mdoc's enclosure macros nest when several
share a line: ".Ql A , Ql B" renders as "'A, 'B''"), a quote closed that
was never opened or left open at the end of a paragraph, and an mdoc macro
name printed as a word (a macro line that lost its dot, or a macro that is
not callable where it was written).

usage: t/manrender.py PAGE...    exit 1 and one line per fault when any"""
import re
import shutil
import subprocess
import sys

MACROS = ("Ql Dq Sq Pq Qq Aq Bq Ar Cm Fl Ic Pa Va Xr Ns Dv Ev Er Sy Op Oo Oc"
          " Bd Bl El Pp Po Pc Qo Qc Do Dc Nm Nd Li Fn Fa Ft Lk Mt").split()
MACRO_WORD = re.compile(r"(?<![\w.-])(%s)(?![\w-])" % "|".join(MACROS))
QUOTES = (("\u2018", "\u2019"), ("\u201c", "\u201d"))


def render(page):
    out = {"mandoc": ["mandoc", "-Tutf8", page]}
    if shutil.which("groff"):
        out["groff"] = ["groff", "-mdoc", "-Tutf8", "-P-c", page]
    for name, cmd in out.items():
        text = subprocess.run(cmd, check=True, capture_output=True).stdout.decode()
        # overstrike (bold, underline) as col -b removes it
        text = re.sub(r".\x08", "", text)
        yield name, text


def faults(text):
    for para in re.split(r"\n[ \t]*\n", text):
        # join lines, and words the renderer hyphenated at a line end
        flat = re.sub(r"\u2010\s+", "", para)
        flat = " ".join(flat.split())
        for o, c in QUOTES:
            depth = 0
            for i, ch in enumerate(flat):
                at = flat[max(0, i - 50):i + 50]
                if ch == o:
                    if depth:
                        yield "quote opened inside a quote: " + at
                    depth += 1
                elif ch == c:
                    if depth == 0:
                        yield "quote closed but not opened: " + at
                    depth = max(0, depth - 1)
            if depth:
                yield "quote not closed in paragraph: " + flat[:100]
        for m in MACRO_WORD.finditer(flat):
            yield "macro name in the text: " + flat[max(0, m.start() - 50):m.end() + 50]


def main():
    bad = 0
    for page in sys.argv[1:]:
        for renderer, text in render(page):
            for f in faults(text):
                print("%s (%s): %s" % (page, renderer, f))
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
