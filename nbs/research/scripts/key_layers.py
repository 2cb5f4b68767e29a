"""Issue 16 research: 2-bit keys in one layer at a time on top of nsn+-1 (pydocs windows 0, 4, 8, 12); converted to ../key_layers_pydocs.csv.
Run from the repository root: python nbs/research/scripts/key_layers.py 4"""
import sys, time, json, math, torch
from nsnquant.models import load_model
from nsnquant.quantizer import NSNQuantizer
from nsnquant.models import mean_group
from nsnquant.data import load_tokens, windows
from nsnquant.eval import ppl_windows
torch.set_num_threads(1)
model, tok = load_model()
L, D = model.config.num_hidden_layers, 64
toks = load_tokens('pydocs', tok, 'eval', max_tokens=16 * 512)
W = windows(toks, 512, 16)
sub = torch.cat([W[i] for i in range(0, 16, int(sys.argv[1]) if len(sys.argv) > 1 else 4)])
n = sub.numel() // 512
mk = lambda b: NSNQuantizer(b, D, 64, scale_bits=4, group=mean_group(D))
def run(kb, vb=None, **kw):
    kq = [mk(b) for b in kb]; vq = [mk(b) for b in (vb or [1] * L)]
    t = time.time(); r = ppl_windows(model, sub, 'nsn+-1', n=n, key_quantizer=kq, value_quantizer=vq, **kw)
    return r
base = run([1] * L)
fp = ppl_windows(model, sub, 'fp', n=n)
print('fp', fp['ppl'], 'base', base['ppl'], base['kv_bits'], base['seconds'], flush=True)
out = {'fp': fp['window_nll'], 'base': base['window_nll'], 'layers': {}}
for l in range(L):
    kb = [1] * L; kb[l] = 2
    r = run(kb)
    d = [a - b for a, b in zip(r['window_nll'], base['window_nll'])]
    out['layers'][l] = r['window_nll']
    print(l, round(r['ppl'], 3), round(r['kv_bits'], 4), 'dnll', round(sum(d) / n, 4), flush=True)
    json.dump(out, open('/tmp/r/sweep.json', 'w'))
