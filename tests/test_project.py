"""Cross-cutting checks of the project itself: the exported library matches the notebooks, the package builds."""
import filecmp, shutil, subprocess, sys, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def test_export_is_idempotent(tmp_path):
    "nbdev_export on a copy of the notebooks reproduces nsnquant/ byte for byte (the notebooks are the source)."
    for p in ('nbs', 'nsnquant', 'settings.ini', 'setup.py'):
        src = ROOT/p
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path/p)
    r = subprocess.run([str(BIN/'nbdev_export')], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    mine = sorted(p.relative_to(ROOT/'nsnquant') for p in (ROOT/'nsnquant').rglob('*.py'))
    theirs = sorted(p.relative_to(tmp_path/'nsnquant') for p in (tmp_path/'nsnquant').rglob('*.py'))
    assert mine == theirs
    diff = [str(p) for p in mine if (ROOT/'nsnquant'/p).read_bytes() != (tmp_path/'nsnquant'/p).read_bytes()]
    assert not diff, f"nbdev_export changes {diff}: run nbdev_export and commit"

def test_every_module_has_a_notebook():
    exported = {p.stem for p in (ROOT/'nsnquant').glob('*.py')} - {'__init__', '_modidx'}
    text = ''.join(p.read_text() for p in (ROOT/'nbs').rglob('*.ipynb'))
    for m in exported: assert f'default_exp {m}' in text, m

def test_wheel_contains_codebooks(tmp_path):
    "`pip wheel .` builds, and the wheel ships the codebooks with their checksums."
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '.', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    whl, = tmp_path.glob('nsnquant-*.whl')
    names = zipfile.ZipFile(whl).namelist()
    for f in ('nsnquant/codebooks/checksums.json', 'nsnquant/codebooks/nsn1b_finetuned.safetensors',
              'nsnquant/codebooks/nsn2b_finetuned.safetensors', 'nsnquant/cli.py'):
        assert f in names, f
    meta = zipfile.ZipFile(whl).read(next(n for n in names if n.endswith('entry_points.txt'))).decode()
    assert 'nsnquant = nsnquant.cli:main' in meta.replace('nsnquant=nsnquant', 'nsnquant = nsnquant')

def test_core_imports_without_the_extras():
    "The library's modules import with none of the extras' packages (datasets, matplotlib, gguf, accelerate, triton): they load lazily."
    import subprocess, sys, textwrap
    code = textwrap.dedent('''
        import sys
        BLOCK = ('datasets', 'matplotlib', 'gguf', 'accelerate', 'triton', 'fastcore')
        for m in BLOCK: sys.modules[m] = None          # as if not installed: `import m` fails, find_spec(m) is None
        import nsnquant.cache, nsnquant.attention, nsnquant.triton_kernels, nsnquant.baselines, nsnquant.eval, nsnquant.analysis, nsnquant.tasks, nsnquant.improved, nsnquant.paper, nsnquant.cli
        import torch
        from nsnquant.quantizer import NSNQuantizer
        q = NSNQuantizer(2, 64); x = torch.randn(1, 64, 64)
        assert q.decode(q.encode(x)).shape == x.shape
        print('ok', sorted(m for m, v in sys.modules.items() if m.split('.')[0] in BLOCK and v is not None))
    ''')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == 'ok []', (r.stdout + r.stderr)[-3000:]

def test_readme_results_equal_the_committed_csv():
    "The README's results table is the committed paper_figures/tab2_ppl.csv, rounded (it is printed from it when index.ipynb runs)."
    import csv, re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    readme = (root/'README.md').read_text()
    rows = list(csv.DictReader(open(root/'paper_figures'/'tab2_ppl.csv')))
    assert len(rows) >= 5
    for r in rows:
        vals = [float(r['kv_bits']), float(r['pydoc_ppl']), float(r['code_ppl'])]   # stored bits, measured
        want = [f"{vals[0]:.2f}"] + [f"{v:.0f}" if v >= 100 else f"{v:.2f}" for v in vals[1:]]
        pat = r'\n    \S[^\n]*?\s' + r'\s+'.join(map(re.escape, want)) + r'\n'
        assert re.search(pat, readme), f"README has no row {want} for `{r['method']}`"

def test_readme_beyond_rows_equal_the_committed_csv():
    "The README's beyond-the-paper lines are the held-out NSNQuant, nsn+ and nsn+k rows of paper_figures/beyond_improved.csv, rounded."
    import csv, re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    readme = (root/'README.md').read_text()
    rows = [r for r in csv.DictReader(open(root/'paper_figures'/'beyond_improved.csv'))
            if r['role'] == 'held out' and r['method'] in ('nsn-1', 'nsn+-1', 'nsn+k-1', 'nsn-2', 'nsn+-2')]
    assert len(rows) >= 4
    for r in rows:
        want = [r['corpus'], f"{float(r['kv_bits']):.2f}", f"{float(r['pct_over_fp']):+.1f}%"]
        if r['method'].startswith('nsn+'): want.append(f"{float(r['dnll_vs_paper']):+.3f} ± {float(r['se_vs_paper']):.3f}")
        pat = r'\n    ' + re.escape(want[0]) + r'\s[^\n]*?\s' + r'\s+'.join(map(re.escape, want[1:])) + r'\s*\n'
        assert re.search(pat, readme), f"README has no line {want} for `{r['method']}`"
