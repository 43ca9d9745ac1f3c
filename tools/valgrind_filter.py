"""Read memcheck XML files (one per process) and fail on errors in our code.

An error counts as ours when any frame of its stack (the access, or for a
leak the allocation) lies in fastsoftmax's extension module (_core*.so) or
comes from a file of src/ or the Cython module. Everything else (CPython's
and NumPy's own uninitialised-value reports, the dynamic loader's
over-reading strncmp, memory that CPython keeps until exit) is counted and
summarised, not failed on: tools/valgrind.sh and docs/hardening.md.

    python tools/valgrind_filter.py DIR     # exit 1 if any error is ours
"""
import collections
import glob
import os
import sys
import xml.etree.ElementTree as ET

OURS_OBJ = ("fastsoftmax/_core",)
OURS_FILE = ("_core.cpp", "_core.pyx", "driver.cpp", "backward.cpp", "dispatch.cpp", "kernels_generic.cpp",
             "kernels_avx2.cpp", "kernels_avx512.cpp", "kernels.hpp", "vec_generic.hpp", "vec_avx2.hpp",
             "vec_avx512.hpp", "threads.hpp", "exp_constants.hpp", "sanitize.hpp")


def ours(frame):
    obj = frame.findtext("obj") or ""
    f = frame.findtext("file") or ""
    return any(o in obj for o in OURS_OBJ) or f in OURS_FILE


def describe(err):
    lines = [f"{err.findtext('kind')}: {err.findtext('what') or err.findtext('xwhat/text') or ''}"]
    for stack in err.findall("stack"):
        for fr in stack.findall("frame")[:12]:
            where = fr.findtext("file")
            where = f"{where}:{fr.findtext('line')}" if where else (fr.findtext("obj") or "?")
            lines.append(f"    {'*' if ours(fr) else ' '} {fr.findtext('fn') or '?'}  ({where})")
        lines.append("    --")
    return "\n".join(lines)


def main(directory):
    files = sorted(glob.glob(os.path.join(directory, "*.xml")))
    bad, other = [], collections.Counter()
    processes = truncated = 0
    for path in files:
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:  # a process killed mid-write (a guard-page child by design): read what is there
            truncated += 1
            text = open(path, errors="replace").read()
            cut = text.rfind("</error>")
            if cut < 0:
                continue
            root = ET.fromstring(text[:cut + len("</error>")] + "</valgrindoutput>")
        processes += 1
        for err in root.iter("error"):
            if any(ours(fr) for st in err.findall("stack") for fr in st.findall("frame")):
                bad.append((path, err))
            else:
                top = err.find("stack/frame")
                obj = os.path.basename(top.findtext("obj") or "?") if top is not None else "?"
                other[(err.findtext("kind"), obj)] += 1
    print(f"valgrind: {processes} process logs ({truncated} cut short), "
          f"{sum(other.values())} errors outside fastsoftmax (ignored), {len(bad)} in fastsoftmax")
    for (kind, obj), n in other.most_common(12):
        print(f"    ignored: {n:5d} x {kind} (top frame in {obj})")
    for path, err in bad[:20]:
        print(f"\n{path}:\n{describe(err)}")
    return 1 if bad or not processes else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
