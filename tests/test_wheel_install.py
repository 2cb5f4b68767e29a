"""The built wheel works when installed on its own, outside the source tree (runs in `make test`, ~30 s).

How the fresh environment gets its dependencies without downloading anything: `pip wheel . --no-deps
--no-build-isolation` builds the wheel; `python -m venv fresh` makes a new environment and `fresh/bin/pip install
--no-index --no-deps <wheel>` installs only nsnquant into it. A `.pth` file in fresh's site-packages then appends the
*current* environment's site-packages to `sys.path`, so torch, transformers, safetensors, ... (already installed there)
are importable, but after fresh's own site-packages: `nsnquant` resolves to the installed wheel, not to the repository
(a path line in a `.pth` does not process the `.pth` files of that directory, so the editable install of the current
environment stays inactive). Everything runs with the working directory outside the repository.
"""
import json, os, subprocess, sys, sysconfig, venv
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = r'''
import json, sys, torch
import nsnquant
from nsnquant.codebook import load_codebook
from nsnquant.quantizer import NSNQuantizer
cbs = {b: load_codebook(b) for b in (1, 2)}
torch.manual_seed(0)
x = torch.randn(2, 4, 128, 128) * torch.exp(0.5 * torch.randn(2, 4, 128, 1))   # [B, H, T, d], T = 2 blocks of 64
cos = {}
for b in (1, 2):
    q = NSNQuantizer(bits=b, head_dim=128)
    p = q.encode(x)
    cos[b] = torch.nn.functional.cosine_similarity(q.decode(p), x, dim=-1).mean().item()
print(json.dumps(dict(file=nsnquant.__file__, version=nsnquant.__version__, shapes={b: list(c.shape) for b, c in cbs.items()},
                      cos=cos, bits_per_element=NSNQuantizer(bits=2, head_dim=128).bits_per_element)))
'''

@pytest.fixture(scope='module')
def fresh(tmp_path_factory):
    "A new venv holding only the nsnquant wheel, with the current environment's packages behind it."
    tmp = tmp_path_factory.mktemp('wheel')
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '.', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp/'dist')],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    whl, = (tmp/'dist').glob('nsnquant-*.whl')
    env_dir = tmp/'fresh'
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir/'bin'/'python'
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', str(whl)], cwd=tmp, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    site = Path(subprocess.check_output([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], text=True).strip())
    here = dict.fromkeys(sysconfig.get_paths()[k] for k in ('purelib', 'platlib'))
    (site/'_nsnquant_test_deps.pth').write_text(''.join(f'{p}\n' for p in here))
    return env_dir

def _run(cmd, cwd, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env['OMP_NUM_THREADS'] = env.get('OMP_NUM_THREADS', '1')
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env=env, **kw)

def test_wheel_imports_loads_codebooks_and_round_trips(fresh, tmp_path):
    r = _run([fresh/'bin'/'python', '-c', CHECK], cwd=tmp_path, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert Path(res['file']).resolve().is_relative_to(fresh.resolve()), f"nsnquant came from {res['file']}, not the fresh venv"
    assert res['shapes'] == {'1': [256, 8], '2': [256, 8]}
    assert res['cos']['2'] > 0.9, res['cos']
    assert res['cos']['1'] > 0.75, res['cos']
    assert 2 < res['bits_per_element'] < 2.5

def test_console_script(fresh, tmp_path):
    exe = fresh/'bin'/'nsnquant'
    assert exe.is_file(), 'the wheel did not install the `nsnquant` console script'
    r = _run([exe, '--help'], cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    for sub in ('generate', 'paper'): assert sub in r.stdout
    r = _run([exe, 'generate', '--help'], cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and '--bits' in r.stdout, r.stderr[-3000:]

def test_console_script_generates(fresh, tmp_path):
    "`nsnquant generate` from the installed wheel: the embedded model, a 2-bit cache, exit status 0, one JSON object."
    r = _run([fresh/'bin'/'nsnquant', 'generate', '--bits', '2', '--prompt', 'The capital of France is', '--max-new-tokens', '4', '--json'],
             cwd=tmp_path, timeout=300)
    assert r.returncode == 0, f"exit status {r.returncode}: {r.stderr[-2000:]}"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res['new_tokens'] == 4 and res['text'].strip() and res['cache_bytes'] > 0, res
