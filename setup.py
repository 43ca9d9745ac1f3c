"""Build of the compiled core: one Cython module plus the C++ kernels in src/.

Each SIMD tier (src/kernels_<isa>.cpp) is compiled with its own target flags
and the rest with the plain baseline, so one build runs on any CPU of its
architecture; src/dispatch.cpp picks the tier at run time. OpenMP is used
when the compiler has it, otherwise the build goes on serial, with a warning.
Set FASTSOFTMAX_NO_OPENMP=1 to force a serial build.
FASTSOFTMAX_SANITIZE=address,undefined builds with those sanitizers
(docs/hardening.md; tools/sanitize.sh runs the tests under them).
"""
import glob
import os
import platform
import subprocess
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386", "x86")

TIER_FLAGS = {
    "kernels_avx2.cpp": ["-mavx2", "-mfma", "-mf16c", "-mpopcnt"],
    "kernels_avx512.cpp": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c", "-mpopcnt"],
}
CXX_FLAGS = ["-std=c++17", "-fno-exceptions", "-fno-rtti"]
# -ffp-contract=off: arithmetic as written (explicit fmadd only), so that code
# paths sharing a sweep, and inlining choices, cannot round differently.
COMMON_FLAGS = ["-O3", "-fvisibility=hidden", "-fno-math-errno", "-ffp-contract=off"]
# Our own C++ (src/) does not rely on signed wrap-around, which Python's CFLAGS
# ask for (-fwrapv) for CPython's sake: without it GCC's loop analysis held
# back the logsumexp row sweep, AVX2 (8, 32000) float32 180 -> 150 us. The
# Cython module keeps Python's flags. (UBSan now also checks signed overflow.)
SRC_FLAGS = ["-fno-wrapv"]


SANITIZERS = ("address", "undefined")


def sanitize_flags():
    """(compile flags, link flags) for FASTSOFTMAX_SANITIZE, e.g. "address,undefined".

    Debuggable code (-O1, line tables, frame pointers) instrumented by the
    named sanitizers; UBSan aborts on its first report. Empty when the variable
    is unset. -g1, not -g: reports still name file and line, and the kernel
    tiers' full debug information took half of CI's instrumented build
    (kernels_avx2.cpp alone 127 -> 65 s).
    """
    value = os.environ.get("FASTSOFTMAX_SANITIZE", "").strip()
    if not value:
        return [], []
    names = [v.strip() for v in value.split(",")]
    bad = [v for v in names if v not in SANITIZERS]
    if bad or not names:
        sys.exit(f"FASTSOFTMAX_SANITIZE={value!r}: unknown sanitizer(s) {bad}; "
                 f"give a comma-separated subset of: {', '.join(SANITIZERS)}")
    flags = ["-fsanitize=" + ",".join(dict.fromkeys(names))]
    if "undefined" in names:
        flags.append("-fno-sanitize-recover=all")
    return flags + ["-fno-omit-frame-pointer", "-g1", "-O1"], flags


def openmp_works(compiler):
    """Compile and link a tiny OpenMP program with the compiler setuptools uses."""
    if os.environ.get("FASTSOFTMAX_NO_OPENMP"):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, "omp", output_dir=tmp, extra_postargs=["-fopenmp"])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        compiler = self.compiler
        san_compile, san_link = sanitize_flags()
        omp = openmp_works(compiler)
        if not omp:
            warnings.warn("fastsoftmax: the compiler has no OpenMP; building a serial (one-thread) library")
        original = compiler._compile

        def compile_one(obj, src, ext, cc_args, extra_postargs, pp_opts):
            flags = list(extra_postargs) + COMMON_FLAGS + (["-fopenmp"] if omp else [])
            if src.endswith(".cpp"):
                flags += CXX_FLAGS
            if os.path.basename(os.path.dirname(os.path.abspath(src))) == "src":
                flags += SRC_FLAGS
            flags += TIER_FLAGS.get(os.path.basename(src), [])
            flags += san_compile  # last: its -O1 replaces -O3
            return original(obj, src, ext, cc_args, flags, pp_opts)

        compiler._compile = compile_one
        compiler.compile = self._parallel_compile(compiler)
        for ext in self.extensions:
            ext.extra_link_args = list(ext.extra_link_args or []) + (["-fopenmp"] if omp else []) + san_link
        super().build_extensions()

    def jobs(self):
        """Compiler processes at once: build_ext -j N, else FASTSOFTMAX_BUILD_JOBS, else the usable CPUs."""
        if self.parallel:
            return max(1, int(self.parallel))
        env = os.environ.get("FASTSOFTMAX_BUILD_JOBS", "").strip()
        if env:
            if not env.isdigit() or int(env) < 1:
                sys.exit(f"FASTSOFTMAX_BUILD_JOBS={env!r}: give a positive integer")
            return int(env)
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def _parallel_compile(self, compiler):
        """compiler.compile with the sources of one extension compiled side by side.

        The extension is seven translation units, three of them the kernel
        tiers that each instantiate kernels.hpp; one after the other they took
        most of a build (and about 8 minutes with the sanitizers, CI's longest
        step). distutils compiles them serially; this is its loop over a pool.
        """
        jobs = self.jobs()

        def compile_all(sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                        extra_preargs=None, extra_postargs=None, depends=None):
            macros, objects, extra, pp_opts, build = compiler._setup_compile(
                output_dir, macros, include_dirs, sources, depends, extra_postargs)
            cc_args = compiler._get_cc_args(pp_opts, debug, extra_preargs)
            todo = [obj for obj in objects if obj in build]

            def one(obj):
                src, ext = build[obj]
                compiler._compile(obj, src, ext, cc_args, extra, pp_opts)

            if jobs == 1 or len(todo) < 2:
                for obj in todo:
                    one(obj)
            else:
                # the slowest first (the tiers' kernels, then by size), so the pool drains evenly
                todo.sort(key=lambda o: ("kernels_" not in build[o][0], -os.path.getsize(build[o][0])))
                with ThreadPoolExecutor(min(jobs, len(todo))) as pool:
                    for f in [pool.submit(one, obj) for obj in todo]:
                        f.result()  # the first failure stops the build with its error
            return objects

        return compile_all


sources = ["fastsoftmax/_core.pyx", "src/driver.cpp", "src/backward.cpp", "src/dispatch.cpp", "src/kernels_generic.cpp",
           "src/stream_copy.cpp"]
if X86:
    sources += ["src/kernels_avx2.cpp", "src/kernels_avx512.cpp"]

extensions = [
    Extension(
        "fastsoftmax._core",
        sources=sources,
        include_dirs=["src", np.get_include()],
        # the kernels live in headers (kernels.hpp, vec_*.hpp): without them
        # here, `build_ext --inplace` after a header edit kept the old build
        depends=sorted(glob.glob("src/*.h") + glob.glob("src/*.hpp")),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        language="c++",
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": BuildExt},
)
