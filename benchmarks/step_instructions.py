"""Instructions per training step of ``small_step.py``'s lesson-5 network, counted by
valgrind's callgrind: xpnn (NumPy CPU device) against the hand-written NumPy loop. A count
does not move with the machine's load, which a shared 2-core machine's timings do; the
step's time is mostly the interpreter and the ufuncs' dispatch, so the count's ratio tracks
the time's (a little below it: the ratio of times ran 1.05 times the ratio of counts on a
quiet machine). Each side runs twice, ``--short`` and ``--long`` steps, and the difference
is divided by the extra steps, so start-up and compilation cancel out.

    PYTHONPATH=. python benchmarks/step_instructions.py      # needs valgrind on PATH
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _loop(which: str, steps: int) -> None:
    sys.path.insert(0, str(HERE))
    import small_step

    if which == "numpy":
        small_step.numpy_loop(steps)
    else:
        small_step.xpnn_loop(steps)


def _count(which: str, steps: int) -> int:
    """Instructions callgrind counted for a whole process running ``steps`` steps."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "XPNN_THREADS": "1"}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--run", which, str(steps)], env=env, capture_output=True, text=True,
        check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--short", type=int, default=1000)
    p.add_argument("--long", type=int, default=3000)
    p.add_argument("--run", nargs=2, metavar=("WHICH", "STEPS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run:
        _loop(args.run[0], int(args.run[1]))
        return None
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not on PATH (Debian: apt install valgrind)")
    per_step = {}
    for which in ("xpnn", "numpy"):
        extra = _count(which, args.long) - _count(which, args.short)
        per_step[which] = extra / (args.long - args.short)
        print(f"  {which:6s} {per_step[which]:9.0f} instructions/step")
    ratio = per_step["xpnn"] / per_step["numpy"]
    print(f"  xpnn / numpy: {ratio:.3f} (instructions; the issue #30 target, 1.3, is on time)")
    return ratio


if __name__ == "__main__":
    main()
