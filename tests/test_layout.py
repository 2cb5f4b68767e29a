"""The package's layout: every import points down (to a module of an earlier notebook), with no circles, and every numbered
notebook imports only modules of earlier notebooks (or its own)."""
import ast, json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG, NBS = ROOT / 'nsnquant', ROOT / 'nbs'

def order(nb_name:str) -> tuple: # '04b_attention' -> (4, 'b')
    m = re.match(r'(\d+)([a-z]?)_', nb_name)
    return (int(m[1]), m[2]) if m else None

def module_notebooks() -> dict: # module name -> its notebook's (number, letter)
    out = {}
    for f in PKG.glob('*.py'):
        m = re.search(r'File to edit: \.\./nbs/([\w/]+)\.ipynb', f.read_text())
        if m: out[f.stem] = order(Path(m[1]).name)
    return out

def imported(tree) -> set: # nsnquant modules a module or a cell imports (anywhere, function bodies included)
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            mod = n.module or ''
            if n.level == 1: out.add(mod.split('.')[0] if mod else None)
            elif mod == 'nsnquant': out |= {a.name for a in n.names}
            elif mod.startswith('nsnquant.'): out.add(mod.split('.')[1])
            if n.level == 1 and not mod: out |= {a.name for a in n.names}
        elif isinstance(n, ast.Import):
            out |= {a.name.split('.')[1] for a in n.names if a.name.startswith('nsnquant.')}
    return {m for m in out if m}

def test_modules_import_down_without_circles():
    nbs = module_notebooks()
    assert len(nbs) >= 10, nbs
    bad, graph = [], {}
    for f in PKG.glob('*.py'):
        if f.stem not in nbs: continue
        deps = {m for m in imported(ast.parse(f.read_text())) if m in nbs and m != f.stem}
        graph[f.stem] = deps
        bad += [f"nsnquant.{f.stem} ({nbs[f.stem]}) imports nsnquant.{d} ({nbs[d]})" for d in deps if nbs[d] >= nbs[f.stem]]
    assert not bad, 'upward imports:\n' + '\n'.join(sorted(bad))
    seen, stack = {}, []                                   # no circles (implied by the order, checked on its own)
    def visit(m):
        if seen.get(m) == 1: raise AssertionError(f"import circle: {' -> '.join(stack + [m])}")
        if seen.get(m) == 2: return
        seen[m] = 1; stack.append(m)
        for d in graph.get(m, ()): visit(d)
        seen[m] = 2; stack.pop()
    for m in graph: visit(m)

def test_notebooks_import_only_earlier_modules():
    nbs, bad = module_notebooks(), []
    for p in sorted(NBS.glob('*.ipynb')):
        own = order(p.stem)
        if own is None: continue                           # index, tutorials and the run-all 99_paper may use anything
        if own[0] == 99: continue
        for c in json.loads(p.read_text())['cells']:
            if c['cell_type'] != 'code': continue
            src = '\n'.join(l for l in ''.join(c['source']).splitlines() if not l.lstrip().startswith(('%', '!')))
            try: tree = ast.parse(src)
            except SyntaxError: continue
            bad += [f"{p.name} imports nsnquant.{m} (notebook {nbs[m]})" for m in imported(tree) if m in nbs and nbs[m] > own]
    assert not bad, '\n'.join(sorted(set(bad)))

def test_the_checker_sees_upward_imports():
    "The parser finds relative, absolute and function-level imports."
    tree = ast.parse("from .cache import X\nimport nsnquant.eval\ndef f():\n    from nsnquant.paper import run_paper\nfrom nsnquant import report")
    assert imported(tree) == {'cache', 'eval', 'paper', 'report'}
