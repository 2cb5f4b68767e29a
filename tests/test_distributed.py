"""Data-parallel `nsnquant eval`: `torchrun --nproc_per_node 2` (gloo, CPU) gives the JSON of one process, bit for bit, with an odd
number of windows, with fewer windows than ranks (rank 1 gets none), under both protocols, and with a method that fails in its windows."""
import contextlib, io, json, os, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = shutil.which('torchrun', path=str(Path(sys.executable).parent)) or shutil.which('torchrun')
RUN_ONLY = ('seconds', 'wall_seconds', 'processes', 'seconds_this_run')   # how long it took and on how many processes: nothing else may differ

pytestmark = pytest.mark.skipif(TORCHRUN is None, reason='torchrun is not installed')

def _env(**kw):
    e = {k: v for k, v in os.environ.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    pp = os.pathsep.join(p for p in (str(ROOT), e.get('PYTHONPATH')) if p)
    return {**e, 'PYTHONPATH': pp, 'OMP_NUM_THREADS': '1', 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', **kw}

def _strip(x):
    if isinstance(x, dict): return {k: _strip(v) for k, v in x.items() if k not in RUN_ONLY}
    return [_strip(v) for v in x] if isinstance(x, list) else x

def _single(args, out):
    "The same command in this process, one thread (as each torchrun rank runs), no distributed environment."
    import torch
    from nsnquant.cli import main
    assert 'WORLD_SIZE' not in os.environ
    n = torch.get_num_threads(); torch.set_num_threads(1)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()): status = main([*args, '--out', str(out)])
    finally: torch.set_num_threads(n)
    return status, buf.getvalue(), json.loads(out.read_text())

def _torchrun(args, out, n=2):
    p = subprocess.run([TORCHRUN, '--nproc_per_node', str(n), '--standalone', '-m', 'nsnquant.cli', *args, '--out', str(out)],
                       capture_output=True, text=True, env=_env(), timeout=300, cwd=ROOT)
    return p, json.loads(out.read_text()) if out.is_file() else None

CASES = [  # odd windows (2 on rank 0, 1 on rank 1), plus a method failing inside its windows; then 1 window for 2 ranks, protocol 2
    ['eval', '--methods', 'fp,nsn-2,quanto-int2', '--data', 'pydoc', '--windows', '3', '--length', '128', '--keep-going', '--no-progress'],
    ['eval', '--methods', 'nsn-2', '--data', 'pydoc', '--protocol', '2', '--windows', '1', '--context', '64', '--decode', '6', '--no-progress'],
]

@pytest.mark.parametrize('args', CASES, ids=['protocol1-3windows', 'protocol2-1window'])
def test_torchrun_equals_one_process(args, tmp_path):
    p, dist = _torchrun(args, tmp_path / 'dist.json')
    assert p.returncode == 0, p.stderr[-2000:]
    status, table, one = _single(args, tmp_path / 'one.json')
    assert status == 0
    assert dist['meta']['processes'] == 2 and one['meta']['processes'] == 1
    assert _strip(dist) == _strip(one)                                 # every perplexity, per-window NLL and bit count: exactly equal
    if '--protocol' not in args:
        r = dist['results']['nsn-2']['pydoc']
        assert len(r['window_nll']) == 3 and len(set(r['window_nll'])) == 3   # three distinct windows, gathered in order
        assert 'error' in dist['results']['quanto-int2']['pydoc'] and 'ppl' in dist['results']['fp']['pydoc']
    assert p.stdout.count('| method |') == 1 and p.stdout.count('\n| ') == table.count('\n| ')   # rank 0 alone prints the table

def test_bad_launch_env_is_refused():
    "A broken launch environment fails in one line naming the variable, before any model loads."
    p = subprocess.run([sys.executable, '-m', 'nsnquant.cli', 'eval', '--methods', 'fp', '--windows', '1', '--length', '16'],
                       capture_output=True, text=True, env=_env(WORLD_SIZE='2', RANK='5'), timeout=120, cwd=ROOT)
    assert p.returncode == 2 and '`RANK` must be in [0, WORLD_SIZE=2)' in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
