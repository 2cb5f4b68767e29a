"""Benchmark NSNQuant decoding: attention alone (one layer, against context and batch) and the default model end to end.

`make bench` runs it with CPU-sized defaults; `--quick` is a smoke run. On a GPU the fused path is the Triton kernel, on a CPU
the compiled loops of `nsnquant.attention` (or torch operators without a C compiler). Results go to
kernels/results/<device>.json plus a plot beside it, and tables with ratios against full precision are printed.

Attention alone, one layer (`--heads` KV heads x `--groups` query heads each, d = `--head-dim`), caches filled through a
`nsnquant.store.KVStore` (batches: one row filled, then `repeat_interleave` and `unshare`, so every row has its own memory):
- `fp`: full-precision K/V (fp32 on CPU, fp16 on GPU) and torch SDPA with the GQA group packed into the query (what transformers'
  sdpa_attention_forward does for one decode token with a padding mask); ratios are against this one.
- `fp-gqa`: the same with `enable_gqa=True` (what sdpa_attention_forward calls for an unmasked decode step).
- `kivi2`: KIVI at 2 bits as `nsnquant.baselines.KIVIQuantizer` stores it, dequantized with its own `decode`, then SDPA.
- `nsn2`, `nsn1`: `nsnquant.triton_kernels.fused_decode_attention` on the store (2 and 1 bit).

End to end (`--e2e`, on by default on a CPU): the embedded SmolLM2-135M in its dtype, decode ms/step and tokens/s at each
(batch, context) for `fp` (DynamicCache), `nsn-1`/`nsn-2` (NSNQuantCache, fused attention) and `kivi-2` (the project's KIVI cache,
dequantize then SDPA). Each context is prefilled once, at batch 1, into a DynamicCache; every method's cache is filled from those
K/V through its own `update` (what a prefill does), then repeated to the batch; only decode steps are timed, one step of each
method per round so that the ratios are measured side by side. On a CPU each figure is the fastest call or step (robust on a
shared machine), on a GPU the median.
"""
import argparse, json, math, os, platform, statistics, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from nsnquant.attention import cpu_kernels
from nsnquant.triton_kernels import fused_decode_attention, triton_encode
from nsnquant.quantizer import NSNQuantizer
from nsnquant.store import KVStore
from nsnquant.rope import StandardRoPE
from nsnquant.baselines import KIVIQuantizer

def device_name(dev):
    if dev.type == 'cuda': return torch.cuda.get_device_name(dev)
    return platform.processor() or platform.machine() or 'cpu'

def timeit_all(fns:dict, dev, repeats, warmup=2) -> dict:
    "`timeit` for several methods at once, round-robin (one call of each per round), so that a slow spell of a shared machine hits all of them."
    for _ in range(warmup):
        for f in fns.values(): f()
    ts = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items(): ts[k].append(timeit(f, dev, 1, warmup=0))
    return {k: (statistics.median if dev.type == 'cuda' else min)(v) for k, v in ts.items()}

def timeit(fn, dev, repeats, warmup=2):
    "Time of `fn()` in ms: median of CUDA-event timings on a GPU; on a CPU the minimum wall time (robust on a shared machine)."
    for _ in range(warmup): fn()
    ts = []
    for _ in range(repeats):
        if dev.type == 'cuda':
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record(); fn(); b.record(); torch.cuda.synchronize(); ts.append(a.elapsed_time(b))
        else:
            t = time.perf_counter(); fn(); ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts) if dev.type == 'cuda' else min(ts)

# ---------------------------------------------------------------- attention alone
def filled_store(bits, T, B, H, D, dev, dtype, tail=32, seed=0, chunk=8192):
    "A KVStore with B rows of T packed tokens (real encodes of synthetic keys with a channel offset) and a `tail`-token fp tail."
    g = torch.Generator().manual_seed(seed)
    rope = StandardRoPE(D)
    s = KVStore(NSNQuantizer(bits, D), NSNQuantizer(bits, D), rope)
    off = torch.randn(1, H, 1, D, generator=g) * 3
    for c in range(0, T + tail, chunk):
        n = min(chunk, T + tail - c)
        k = torch.randn(1, H, n, D, generator=g) * 2 + off
        s.append(rope.apply(k, torch.arange(c, c + n)[None]).to(dev, dtype), torch.randn(1, H, n, D, generator=g).to(dev, dtype), pos=c)
    if B > 1: s.repeat_interleave(B); s.unshare()
    return s

def bench_decode(T, B, a, dev, fp_dtype):
    "ms per decode-attention call of every method on the same queries, timed round-robin; bytes per token."
    H, G, D = a.heads, a.groups, a.head_dim
    scaling = D ** -0.5
    q = torch.randn(B, H * G, 1, D, device=dev, dtype=fp_dtype)
    k = torch.randn(B, H, T, D, device=dev, dtype=fp_dtype); v = torch.randn_like(k)
    qp = q.view(B, H, G, D)
    fns = {'fp': lambda: F.scaled_dot_product_attention(qp, k, v, scale=scaling),
           'fp-gqa': lambda: F.scaled_dot_product_attention(q, k, v, scale=scaling, enable_gqa=True)}
    fpb = 2 * H * D * torch.finfo(fp_dtype).bits / 8
    nbytes = {'fp': fpb, 'fp-gqa': fpb}
    if not a.no_kivi:
        kq, vq = KIVIQuantizer(2, D, 'channel'), KIVIQuantizer(2, D, 'token')
        kp, vp = kq.encode(k), vq.encode(v)
        fns['kivi2'] = lambda: F.scaled_dot_product_attention(qp, kq.decode(kp).to(fp_dtype), vq.decode(vp).to(fp_dtype), scale=scaling)
        nbytes['kivi2'] = (kp.nbytes() + vp.nbytes()) / (B * T)
    stores = {bits: filled_store(bits, T, B, H, D, dev, fp_dtype) for bits in (2, 1)}
    for bits, st in stores.items():
        fns[f'nsn{bits}'] = (lambda st: lambda: fused_decode_attention(q, st, scaling))(st)
        nbytes[f'nsn{bits}'] = st.block_nbytes() / st.block
    return timeit_all(fns, dev, a.repeats), nbytes

def bench_encode(a, dev):
    H, D, T = a.heads, a.head_dim, a.encode_tokens
    out = {}
    x = torch.randn(H, T, D, device=dev) * 2 + torch.randn(H, 1, D, device=dev)
    rope = StandardRoPE(D)
    pos = torch.arange(T, device=dev)
    for bits in (2, 1):
        q = NSNQuantizer(bits, D)
        out[f'nsn{bits} torch'] = T / timeit(lambda: q.encode(x, pos, rope), dev, a.repeats, warmup=1) * 1e3
        if dev.type == 'cuda':
            out[f'nsn{bits} triton'] = T / timeit(lambda: triton_encode(q, x, pos, rope), dev, a.repeats, warmup=1) * 1e3
    return out   # tokens (of one layer, all KV heads) per second

# ---------------------------------------------------------------- end to end
def _rss_mb() -> float:
    try: return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20
    except (OSError, ValueError): return float('nan')

def bench_end_to_end(a, dev):
    "Decode ms/step of the default model for each method, batch and context."
    from transformers import DynamicCache
    from nsnquant.models import load_model
    from nsnquant.data import load_tokens
    from nsnquant.baselines import make_cache
    model, tok = load_model(device=dev)
    methods = a.e2e_methods.split(',')
    ids = load_tokens(a.e2e_corpus, tok, max_tokens=max(c for _, c in a.e2e_grid) + a.e2e_steps + 8)
    rows = []
    for ctx in sorted({c for _, c in a.e2e_grid}):
        x = ids[:ctx][None].to(dev)
        t0 = time.perf_counter()
        with torch.no_grad():
            ref = DynamicCache(config=model.config)
            model(x, cache=ref, use_cache=True, logits_to_keep=1)
        print(f"  prefill {ctx} tokens, batch 1: {time.perf_counter() - t0:.1f} s", flush=True)
        kv = [(l.keys, l.values) for l in ref.layers]
        pos = torch.arange(ctx, device=dev)[None]
        for B in sorted({b for b, c in a.e2e_grid if c == ctx}):
            caches = {}
            for m in methods:                                           # every method's cache, filled the way a prefill fills it
                if m == 'fp':
                    c = DynamicCache(config=model.config)
                    for li, (k, v) in enumerate(kv): c.update(k.clone(), v.clone(), li)
                else:
                    c = make_cache(m, model, attention='fused') if m.startswith('nsn') else make_cache(m, model)
                    for li, (k, v) in enumerate(kv): c.update(k, v, li, kwargs={'position_ids': pos})
                if B > 1:
                    c.batch_repeat_interleave(B)
                    for l in c.layers:
                        if hasattr(l, 'store'): l.store.unshare()
                caches[m] = c
            nxt = {m: ids[ctx:ctx + 1].view(1, 1).expand(B, 1).to(dev) for m in methods}
            times, t_cfg = {m: [] for m in methods}, time.perf_counter()
            with torch.no_grad():
                for s in range(a.e2e_steps + 1):                        # round-robin: one step of each method per round
                    if s >= 3 and time.perf_counter() - t_cfg > 120: break              # slow methods: two timed rounds suffice
                    p = torch.full((B, 1), ctx + s, device=dev)
                    for m in methods:
                        if dev.type == 'cuda': torch.cuda.synchronize()
                        t = time.perf_counter()
                        out = model(nxt[m], cache=caches[m], use_cache=True, position_ids=p)
                        if dev.type == 'cuda': torch.cuda.synchronize()
                        times[m].append((time.perf_counter() - t) * 1e3)
                        nxt[m] = out.logits[:, -1:].argmax(-1)
            for m in methods:
                c = caches[m]
                ms = (statistics.median if dev.type == 'cuda' else min)(times[m][1:])    # the first round is a warmup
                kvb = c.nbytes() if hasattr(c, 'nbytes') else sum(t.numel() * t.element_size() for l in c.layers for t in (l.keys, l.values))
                row = dict(method=m, batch=B, context=ctx, ms_per_step=round(ms, 2), tok_per_s=round(B * 1e3 / ms, 1),
                           kv_bytes=int(kvb), rss_mb=round(_rss_mb(), 1))
                rows.append(row)
                print(f"  {m:>7} batch {B:>2} context {ctx:>5}: {ms:8.1f} ms/step, {row['tok_per_s']:8.1f} tok/s, KV {kvb / 2**20:8.1f} MiB", flush=True)
            del caches, c
        del ref, kv
    return rows

# ---------------------------------------------------------------- report
def table(rows, key, methods):
    hdr = f"{key:>8} | " + " | ".join(f"{m:>17}" for m in methods)
    lines = [hdr, '-' * len(hdr)]
    for r in rows:
        fp = r['ms']['fp']
        lines.append(f"{r[key]:>8} | " + " | ".join(f"{r['ms'][m]:8.3f} ms {fp / r['ms'][m]:5.2f}x" for m in methods))
    return '\n'.join(lines)

def e2e_table(rows):
    "tokens/s per (batch, context), with each method's ratio to fp measured in the same run."
    methods = list(dict.fromkeys(r['method'] for r in rows))
    keys = list(dict.fromkeys((r['batch'], r['context']) for r in rows))
    get = {(r['method'], r['batch'], r['context']): r for r in rows}
    hdr = f"{'batch x context':>16} | " + " | ".join(f"{m:>22}" for m in methods)
    lines = [hdr, '-' * len(hdr)]
    for b, c in keys:
        fp = get.get(('fp', b, c))
        cells = []
        for m in methods:
            r = get.get((m, b, c))
            ratio = f"{r['tok_per_s'] / fp['tok_per_s']:5.2f}x" if r and fp else '     '
            cells.append(f"{r['ms_per_step']:8.1f} ms {ratio} fp" if r else ' ' * 22)
        lines.append(f"{f'{b} x {c}':>16} | " + " | ".join(cells))
    return '\n'.join(lines)

def plot(res, path):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [(k, lab) for k, lab in (('context', 'context length (tokens), batch 1'),
                                      ('batch', f"batch size (context {res['config']['batch_context']})")) if res.get(k)]
    e2e = res.get('end_to_end') or []
    fig, axs = plt.subplots(1, len(panels) + bool(e2e), figsize=(5.5 * (len(panels) + bool(e2e)), 4), squeeze=False)
    for ax, (k, lab) in zip(axs[0], panels):
        rows = res[k]
        for m in rows[0]['ms']:
            ax.plot([r[k] for r in rows], [r['ms'][m] for r in rows], 'o-', label=m)
        ax.set_xscale('log', base=2); ax.set_yscale('log'); ax.set_xlabel(lab); ax.set_ylabel('decode attention, ms (one layer)')
        ax.grid(alpha=.3); ax.legend()
    if e2e:
        ax = axs[0][-1]
        keys = list(dict.fromkeys((r['batch'], r['context']) for r in e2e))
        methods = list(dict.fromkeys(r['method'] for r in e2e))
        get = {(r['method'], r['batch'], r['context']): r['tok_per_s'] for r in e2e}
        w = 0.8 / len(methods)
        for i, m in enumerate(methods):
            ax.bar([j + i * w for j in range(len(keys))], [get.get((m, b, c), 0) for b, c in keys], w, label=m)
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(keys))], [f'{b}x{c}' for b, c in keys], rotation=30)
        ax.set_ylabel('decode tokens/s (default model)'); ax.set_xlabel('batch x context'); ax.grid(alpha=.3, axis='y'); ax.legend()
    fig.suptitle(f"{res['device']}: H_kv={res['config']['heads']}, G={res['config']['groups']}, d={res['config']['head_dim']}, "
                 f"{res['threads']} thread(s)")
    fig.tight_layout(); fig.savefig(path, dpi=120)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--contexts', default=None, help='comma-separated context lengths (default: 1k..32k on CPU, 1k..64k on GPU)')
    ap.add_argument('--batches', default=None, help='comma-separated batch sizes at --batch-context (default: 1,4,16 on CPU, 1..64 on GPU)')
    ap.add_argument('--batch-context', type=int, default=8192)
    ap.add_argument('--heads', type=int, default=8, help='KV heads (default 8, LLaMA-3-8B-like)')
    ap.add_argument('--groups', type=int, default=4, help='query heads per KV head')
    ap.add_argument('--head-dim', type=int, default=128)
    ap.add_argument('--encode-tokens', type=int, default=None)
    ap.add_argument('--repeats', type=int, default=None)
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    ap.add_argument('--no-kivi', action='store_true', help='skip the (slow) KIVI dequantize-then-attend row')
    ap.add_argument('--e2e', default=None, choices=('on', 'off'), help='end-to-end model benchmark (default: on on a CPU, off on a GPU)')
    ap.add_argument('--e2e-grid', default=None, help='batch x context pairs, e.g. "1x512,16x4096" (default: 1,4,16 x 512,4096 and 1x16384)')
    ap.add_argument('--e2e-methods', default='fp,nsn-1,nsn-2,kivi-2')
    ap.add_argument('--e2e-steps', type=int, default=None, help='timed decode steps per configuration')
    ap.add_argument('--e2e-corpus', default='pydoc')
    ap.add_argument('--quick', action='store_true', help='smoke run: small sizes, few repeats')
    ap.add_argument('--out', default=str(ROOT / 'kernels' / 'results'))
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    gpu = dev.type == 'cuda'
    if a.threads: torch.set_num_threads(a.threads)
    ints = lambda s: [int(x) for x in s.split(',') if x]
    ctx = ints(a.contexts) if a.contexts else ([1024, 4096] if a.quick else [1024 * 2 ** i for i in range(7 if gpu else 6)])
    if a.quick: a.batch_context = min(a.batch_context, 2048)
    bat = ints(a.batches) if a.batches is not None else ([1, 4] if a.quick else [1, 4, 16, 64] if gpu else [1, 4, 16])
    a.repeats = a.repeats or (3 if a.quick else 20 if gpu else 9)
    a.encode_tokens = a.encode_tokens or (1024 if a.quick else 65536 if gpu else 4096)
    e2e = (a.e2e or ('off' if gpu else 'on')) == 'on'
    grid = a.e2e_grid or ('1x256,2x256' if a.quick else '1x512,4x512,16x512,1x4096,4x4096,16x4096,1x16384')
    a.e2e_grid = [tuple(int(v) for v in p.split('x')) for p in grid.split(',') if p]
    a.e2e_steps = a.e2e_steps or (2 if a.quick else 6)
    fp_dtype = torch.float16 if gpu else torch.float32
    name = device_name(dev)
    res = dict(device=name, torch=torch.__version__, threads=torch.get_num_threads(), fp_dtype=str(fp_dtype),
               config=dict(heads=a.heads, groups=a.groups, head_dim=a.head_dim, batch_context=a.batch_context),
               path='triton' if gpu else 'cpu', context=[], batch=[], end_to_end=[],
               cpu_compiled_loops=None if gpu else cpu_kernels() is not None)
    cpu_path = 'compiled loops' if res['cpu_compiled_loops'] else 'torch operators'
    print(f"# {name} ({'Triton' if gpu else cpu_path} path, {torch.get_num_threads()} threads), "
          f"H_kv={a.heads} G={a.groups} d={a.head_dim}, fp={fp_dtype}", flush=True)
    res['encode_tokens_per_s'] = bench_encode(a, dev)
    print('encode, tokens/s (one layer, all KV heads):', {k: f'{v:,.0f}' for k, v in res['encode_tokens_per_s'].items()}, flush=True)
    for T in ctx:
        ms, nb = bench_decode(T, 1, a, dev, fp_dtype)
        res['context'].append(dict(context=T, ms=ms)); res['bytes_per_token'] = nb
        print(f"  context {T}: " + ', '.join(f'{k} {v:.3f} ms' for k, v in ms.items()), flush=True)
    for B in bat:
        ms, _ = bench_decode(a.batch_context, B, a, dev, fp_dtype)
        res['batch'].append(dict(batch=B, ms=ms))
        print(f"  batch {B}: " + ', '.join(f'{k} {v:.3f} ms' for k, v in ms.items()), flush=True)
    methods = list(res['context'][0]['ms'])
    print('\nDecode attention latency, one layer, batch 1 (ratio = fp time / method time):')
    print(table(res['context'], 'context', methods))
    if res['batch']:
        print(f"\nBatch at context {a.batch_context}:"); print(table(res['batch'], 'batch', methods))
    print('\nBytes per token (one layer, K+V, all KV heads):', {k: round(v, 1) for k, v in res['bytes_per_token'].items()})
    if e2e:
        print('\nEnd to end, default model:', flush=True)
        res['end_to_end'] = bench_end_to_end(a, dev)
        print('\nDecode ms/step (ratio = tokens/s over fp tokens/s, same run):'); print(e2e_table(res['end_to_end']))
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    stem = ''.join(ch if ch.isalnum() or ch in '-_.' else '_' for ch in name).strip('_') or 'cpu'
    (out / f'{stem}.json').write_text(json.dumps(res, indent=1))
    plot(res, out / f'{stem}.png')
    print(f"\nwrote {out / (stem + '.json')} and {out / (stem + '.png')}")
    return res

if __name__ == '__main__': main()
