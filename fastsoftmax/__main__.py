"""Command line: `python -m fastsoftmax info` and `python -m fastsoftmax bench`."""
import argparse
import platform
import sys

import numpy as np


def info(args):
    import fastsoftmax
    from fastsoftmax import _config
    cfg = fastsoftmax.show_config()
    print(f"fastsoftmax {cfg['version']}")
    print(f"  python        {platform.python_version()} ({sys.executable})")
    print(f"  numpy         {np.__version__}")
    print(f"  cpu           {_config.cpu_name()} ({platform.machine()})")
    print(f"  isa in use    {cfg['isa']}")
    print(f"  isa available {', '.join(cfg['isa_available'])} (compiled: {', '.join(cfg['isa_compiled'])})")
    print(f"  openmp        {'on' if cfg['openmp'] else 'off (serial build)'}")
    print(f"  threads       {cfg['num_threads']}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastsoftmax")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="build, SIMD tier and threads")
    from . import _bench  # numpy only at import; the peers load inside the bench worker
    _bench.add_parser(sub)
    args = parser.parse_args(argv)
    return {"info": info, "bench": _bench.main}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
