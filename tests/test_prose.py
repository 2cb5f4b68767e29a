"""Numbers in the docs' prose come from outputs: every measured-looking number in a notebook's markdown (a decimal with
three or more significant digits) appears in the committed outputs of that notebook's code cells, so refreshing the
outputs cannot leave a stale figure behind unnoticed. Version numbers (`transformers 5.24`) and arXiv ids are not measurements, and a sentence that names the paper may quote it."""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NUM = re.compile(r'(?<![\w$\\{^_.\-/])[+-]?\d+\.\d+(?![\w.]*\d)')
VERSION = re.compile(r'(?:transformers|torch|Python|python|Triton|triton|nbdev|lm_eval|lm-eval|kvpress|fastcore|execnb|arXiv|CUDA|version|v)'
                     r'[\s=<>≥≤,]*(?:\d+\.\d+(?:\.\d+)?[\s,/or-]*)+')

def outputs(cells) -> str:
    out = []
    for c in cells:
        for o in c.get('outputs', []) if c['cell_type'] == 'code' else []:
            out.append(''.join(o.get('text', '')))
            for k in ('text/plain', 'text/markdown', 'text/html'): out.append(''.join(o.get('data', {}).get(k, '')))
    return '\n'.join(out)

def prose_numbers(src:str) -> list:
    src = ' '.join(x for x in re.split(r'(?<=[.!?])\s+|\n\s*[-*|]', src) if not re.search(r'\bpaper\b', x, re.I))   # quotations of the paper
    s = re.sub(r'\$\$.*?\$\$|\$[^$\n]*\$', ' ', src, flags=re.S)          # math is definitions, not measurements
    s = re.sub(r'`[^`\n]*`', ' ', s)                                    # code: argument values, names
    s = re.sub(r'\]\([^)]*\)', ']', s)                                  # link targets
    s = VERSION.sub(' ', s)
    return [n for n in NUM.findall(s) if len(n.lstrip('+-').replace('.', '').lstrip('0')) >= 3]

def stale(nb:Path) -> list:
    cells = json.loads(nb.read_text())['cells']
    outs = outputs(cells)
    return [(i, n) for i, c in enumerate(cells) if c['cell_type'] == 'markdown'
            for n in prose_numbers(''.join(c['source'])) if n.lstrip('+') not in outs]

NBS = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)

@pytest.mark.parametrize('nb', NBS, ids=lambda p: p.stem)
def test_prose_numbers_are_outputs(nb):
    bad = stale(nb)
    assert not bad, f"{nb.name}: numbers typed into markdown that no code cell output shows (cell, number): {bad}"

def test_the_checker_sees_typed_numbers():
    assert prose_numbers('Full precision gives 13.195, NSNQuant-2 (2.40 bits) 14.234; +0.0673 ± 0.0559.') == ['13.195', '2.40', '14.234', '+0.0673', '0.0559']
    assert prose_numbers('transformers 5.24 and torch 2.13, `scale=0.125`, $0.1234$, [x](a/1.234.png), 3 x 4, 0.1') == []
    assert prose_numbers('We get 12.35. The paper reports 5.285 to 6.293. Ours is 14.45.') == ['12.35', '14.45']
