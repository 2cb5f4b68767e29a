"""Execute notebooks in place for the docs, skipping cells flagged `slow` or `cuda` (their previous outputs stay) and cells marked
`#| eval: false` (as nbdev_test does).

    python tools/execute_docs.py nbs/10_analysis.ipynb [more.ipynb ...]
    python tools/execute_docs.py --slow nbs/09_eval.ipynb      # the `slow` cells too (minutes each on a CPU)

`jupyter nbconvert --execute` would run the flagged cells too (minutes to hours on a CPU); `nbdev_test` skips them but keeps no
outputs. Run `nbdev_clean` afterwards (`make lib` does)."""
import os, re, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

SKIP = {'slow', 'cuda'}

def flags(src:str) -> set:
    "The nbdev directives of a cell's leading `#|` lines."
    out = set()
    for line in src.splitlines():
        if not line.startswith('#|'): break
        out |= set(re.split(r'[\s,]+', line[2:].strip()))
    return out

def no_eval(src:str) -> bool:
    "Whether a cell's leading `#|` lines say `eval: false`."
    for line in src.splitlines():
        if not line.startswith('#|'): return False
        if re.fullmatch(r'#\|\s*eval:\s*false\s*', line.strip()): return True
    return False

def execute(path:Path, skip_flags:set=SKIP) -> bool:
    nb, shell, t0 = read_nb(path), CaptureShell(path), time.time()
    skip = lambda c: c.cell_type != 'code' or bool(skip_flags & flags(c.source)) or no_eval(c.source)
    cwd = os.getcwd(); os.chdir(path.parent)
    try: shell.run_all(nb, exc_stop=True, preproc=skip)
    except Exception:
        sys.stderr.write(shell.prettytb(fname=path) + '\n'); return False
    finally: os.chdir(cwd)
    write_nb(nb, path)
    print(f"{path}: executed in {time.time() - t0:.0f} s")
    return True

if __name__ == '__main__':
    args = sys.argv[1:]
    slow = '--slow' in args
    paths = [a for a in args if a != '--slow']
    if not paths: sys.exit(__doc__)
    sys.exit(0 if all([execute(Path(p).resolve(), SKIP - {'slow'} if slow else SKIP) for p in paths]) else 1)
