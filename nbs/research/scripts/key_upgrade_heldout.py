"""Issue 16 research: the chosen setting (1-token fp16 sink, 2-bit keys in the 14 top-ranked layers) against fp, nsn-1 and nsn+-1 on 16 windows
of pydocs (chosen on) and pydoc, bible, code (held out); saved as ../key_upgrade_heldout.json."""
import json, torch
from nsnquant.models import load_model, mean_group, key_sensitivity
from nsnquant.quantizer import NSNQuantizer
from nsnquant.data import load_tokens
from nsnquant.eval import ppl_windows
torch.set_num_threads(1)
model, tok = load_model()
L, D = model.config.num_hidden_layers, 64
sig = key_sensitivity(model)   # as run: |W_q diag(g)| |W_k diag(g)|, the same ranking up to a constant factor
up = sorted(range(L), key=lambda l: -sig[l])[:14]
mk = lambda b: NSNQuantizer(b, D, 64, scale_bits=4, group=mean_group(D))
cand = dict(key_quantizer=[mk(2 if l in up else 1) for l in range(L)], value_quantizer=[mk(1)] * L, fp_sink=1)
out = {}
for corpus in ('pydocs', 'pydoc', 'bible', 'code'):
    toks = load_tokens(corpus, tok, 'eval', max_tokens=16 * 512)
    out[corpus] = {}
    for name, m, kw in (('fp', 'fp', {}), ('nsn-1', 'nsn-1', {}), ('nsn+-1', 'nsn+-1', {}), ('cand', 'nsn+-1', cand)):
        r = ppl_windows(model, toks, m, 512, 16, **kw)
        out[corpus][name] = dict(window_nll=r['window_nll'], kv_bits=r['kv_bits'], ppl=r['ppl'])
        print(corpus, name, round(r['ppl'], 3), round(r['kv_bits'], 4), r['seconds'], flush=True)
        json.dump(dict(up=up, results=out), open('/tmp/r/heldout.json', 'w'))
