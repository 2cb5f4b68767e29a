"""Issue 16 research: fp16 sink size against the number of 2-bit key layers (ranked by the weight-only proxy, `nsnquant.models.key_sensitivity`)
at <= 1.5 bits, pydocs odd windows 1..15, with the lowest-ranked layers as a control; converted to ../key_budget_pydocs.csv."""
import sys, json, torch
from nsnquant.models import load_model, mean_group, key_sensitivity
from nsnquant.quantizer import NSNQuantizer
from nsnquant.data import load_tokens, windows
from nsnquant.eval import ppl_windows
torch.set_num_threads(1)
model, tok = load_model()
L, D = model.config.num_hidden_layers, 64
sig = key_sensitivity(model)   # as run: |W_q diag(g)| |W_k diag(g)|, the same ranking up to a constant factor
order = sorted(range(L), key=lambda l: -sig[l])
print('order', order)
W = windows(load_tokens('pydocs', tok, 'eval', max_tokens=16 * 512), 512, 16)
sub = torch.cat([W[i] for i in range(1, 16, 2)]); n = 8    # the odd windows (the sweep used 0,4,8,12)
mk = lambda b: NSNQuantizer(b, D, 64, scale_bits=4, group=mean_group(D))
res = {}
def run(name, S, up):
    kb = [2 if l in up else 1 for l in range(L)]
    r = ppl_windows(model, sub, 'nsn+-1', n=n, key_quantizer=[mk(b) for b in kb], value_quantizer=[mk(1)] * L, fp_sink=S)
    res[name] = r['window_nll']
    d = [a - b for a, b in zip(r['window_nll'], res['S8 n0'])] if 'S8 n0' in res else [0]
    m = sum(d) / len(d); se = (sum((x - m) ** 2 for x in d) / (len(d) - 1) / len(d)) ** .5 if len(d) > 1 else 0
    print(f"{name:14} ppl {r['ppl']:.3f} kv_bits {r['kv_bits']:.4f} dNLL vs nsn+-1 {m:+.4f} ± {se:.4f}", flush=True)
run('S8 n0', 8, [])
for S, k in ((8, 1), (4, 9), (2, 13), (1, 14), (0, 16)): run(f'S{S} n{k}', S, order[:k])
run('S4 n9 bottom', 4, order[-9:])
json.dump(res, open('/tmp/r/combo.json', 'w'))
