"""`make test`: every notebook through `nbdev_test`, then `pytest tests/`; one closing line `N passed, N failed`."""
import argparse, os, subprocess, sys, time, re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def _skip_exec(nb:Path) -> bool:
    "A notebook whose front matter says `skip_exec: true` (the run-all paper notebook: `make paper` runs it)."
    import json
    cells = json.loads(nb.read_text()).get('cells', [])
    src = ''.join(cells[0].get('source', [])) if cells and cells[0].get('cell_type') in ('markdown', 'raw') else ''
    return src.lstrip().startswith('---') and 'skip_exec: true' in src

def notebooks():
    "The notebooks nbdev_test runs: under nbs/, skipping names that start with `_` or `.` and `skip_exec` notebooks."
    return sorted(p for p in (ROOT/'nbs').rglob('*.ipynb')
                  if not any(part.startswith(('_', '.')) for part in p.relative_to(ROOT/'nbs').parts) and not _skip_exec(p))

def run_nb(nb, flags):
    t = time.time()
    cmd = [str(BIN/'nbdev_test'), '--path', str(nb), '--n_workers', '0'] + (['--flags', flags] if flags else [])
    env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}  # notebooks run side by side
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    return nb, r.returncode == 0, time.time() - t, (r.stdout + r.stderr)[-6000:]

def run_pytest(args):
    xml = ROOT/'tests'/'_out'/'pytest.xml'
    xml.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', str(ROOT/'tests'), f'--junitxml={xml}'] + args, cwd=ROOT)
    if r.returncode == 5: return 0, 0  # no tests collected
    txt = xml.read_text() if xml.exists() else ''
    m = re.search(r'<testsuite [^>]*', txt)
    if not m: return 0, 1
    get = lambda k: int(re.search(rf'{k}="(\d+)"', m.group(0)).group(1))
    total, fails, errs, skips = get('tests'), get('failures'), get('errors'), get('skipped')
    failed = fails + errs + (1 if r.returncode not in (0, 5) and fails + errs == 0 else 0)
    return total - fails - errs - skips, failed

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--flags', default='', help='nbdev test flags to run, e.g. "slow"')
    ap.add_argument('--no-pytest', action='store_true')
    ap.add_argument('--no-nbs', action='store_true')
    ap.add_argument('--workers', type=int, default=int(os.environ.get('NSNQUANT_TEST_WORKERS', 2)))
    ap.add_argument('pytest_args', nargs='*')
    a = ap.parse_args()
    passed = failed = 0
    if not a.no_nbs:
        with ThreadPoolExecutor(a.workers) as ex:
            for nb, ok, secs, out in ex.map(lambda nb: run_nb(nb, a.flags), notebooks()):
                print(f"{'ok  ' if ok else 'FAIL'} {nb.relative_to(ROOT)} ({secs:.0f}s)", flush=True)
                if not ok: print(out, flush=True)
                passed += ok; failed += not ok
    if not a.no_pytest:
        p, f = run_pytest(a.pytest_args)
        passed += p; failed += f
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
