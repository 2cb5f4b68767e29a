"""Benchmark the NSNQuant kernels: encode throughput, decode-attention latency vs context and batch, bytes per token.

`make bench` runs it with CPU-sized defaults (a few minutes); `--quick` is a smoke run. On a GPU the fused path is the Triton
kernel, on a CPU the vectorized torch path. Results go to kernels/results/<device>.json plus a plot beside it, and a table with
ratios against full-precision SDPA is printed.

Methods, all over the same synthetic layer (one attention layer, `--heads` KV heads x `--groups` query heads each):
- `fp`: full-precision K/V (fp32 on CPU, fp16 on GPU) and torch SDPA with the GQA group packed into the query (what transformers'
  sdpa_attention_forward does for one decode token with a padding mask); ratios are against this one.
- `fp-gqa`: the same with `enable_gqa=True` (what sdpa_attention_forward calls for an unmasked decode step).
- `kivi2`: KIVI at 2 bits as `nsnquant.baselines.KIVIQuantizer` stores it (keys per channel, values per token, groups of 32,
  fp16 scale/min), dequantized with its own `decode` to the fp dtype, then the same SDPA (what the project's KIVI cache does).
- `kivi2*`: the same layout with a lean unpack written here (shifts and one multiply-add), then SDPA: a fairer price of
  dequantize-then-attend at 2 bits. Neither is KIVI's own fused CUDA kernel.
- `nsn2`, `nsn1`: `nsnquant.kernels.fused_decode_attention` on NSNQuant-packed blocks (2 and 1 bit); on a CPU the 1-bit path
  uses the compiled loops of `nsnquant.kernels.cpu_kernels` when a C compiler is present (`cpu_compiled_loops` in the JSON; set
  NSNQUANT_CPU_EXT=0 to measure without them).
"""
import argparse, json, math, os, platform, statistics, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from nsnquant.kernels import fused_decode_attention, triton_encode, cpu_kernels
from nsnquant.quantizer import NSNQuantizer, PackedKV
from nsnquant.cache import NSNQuantLayer, _Row
from nsnquant.models import StandardRoPE
try: from nsnquant.baselines import KIVIQuantizer
except ImportError: KIVIQuantizer = None

def device_name(dev):
    if dev.type == 'cuda': return torch.cuda.get_device_name(dev)
    return platform.processor() or platform.machine() or 'cpu'

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

# ---------------------------------------------------------------- synthetic caches
def synthetic_layer(bits, T, B, H, D, dev, dtype, tail=32, seed=0):
    "An NSNQuantLayer with B rows of T packed tokens (4 encoded blocks per head, tiled) and a full-precision tail."
    g = torch.Generator().manual_seed(seed)
    kq, vq, rope = NSNQuantizer(bits, D), NSNQuantizer(bits, D), StandardRoPE(D)
    x = torch.randn(H, 256, D, generator=g)
    pk = kq.encode(x * 2 + torch.randn(H, 1, D, generator=g), torch.arange(256), rope)
    pv = vq.encode(torch.randn(H, 256, D, generator=g))
    rep = T // 256
    pk = PackedKV.cat([pk] * rep).map(lambda t: t.to(dev)); pv = PackedKV.cat([pv] * rep).map(lambda t: t.to(dev))
    L = NSNQuantLayer(kq, vq, rope)
    L.H, L.D, L.dtype, L.device, L.is_initialized = H, D, dtype, dev, True
    e = torch.zeros(H, 0, D, device=dev, dtype=dtype)
    tk = torch.randn(H, tail, D, generator=g).to(dev, dtype); tv = torch.randn(H, tail, D, generator=g).to(dev, dtype)
    L.rows = [_Row(0, 0, e, e, pk, pv, tk, tv, rep * 256) for _ in range(B)]
    L.cumulative_length = rep * 256 + tail
    return L

def kivi2_pack(x, keys):
    "2-bit uniform asymmetric codes of x [B, H, T, D] in groups of 32: keys per channel (32 tokens), values per token (32 channels)."
    B, H, T, D = x.shape
    xs, red = (x.view(B, H, T // 32, 32, D), -2) if keys else (x.view(B, H, T, D // 32, 32), -1)
    lo, hi = xs.amin(red, keepdim=True), xs.amax(red, keepdim=True)
    scale = ((hi - lo) / 3).clamp_min(1e-6)
    q = ((xs - lo) / scale).round().clamp(0, 3).to(torch.uint8)
    q = q.view(*q.shape[:-1], -1, 4)                                  # four 2-bit codes per byte along the last dim
    return q[..., 0] | (q[..., 1] << 2) | (q[..., 2] << 4) | (q[..., 3] << 6), scale.half(), lo.half()

def kivi2_unpack(packed, scale, lo, shape, dtype):
    "Dequantize `kivi2_pack` output to `shape` [B, H, T, D] in `dtype`."
    q = torch.stack([(packed >> s) & 3 for s in (0, 2, 4, 6)], -1).flatten(-2).to(dtype)
    return (q * scale.to(dtype) + lo.to(dtype)).reshape(shape)

# ---------------------------------------------------------------- measurements
def bench_decode(T, B, a, dev, fp_dtype):
    H, G, D = a.heads, a.groups, a.head_dim
    scaling = D ** -0.5
    q = torch.randn(B, H * G, 1, D, device=dev, dtype=fp_dtype)
    k = torch.randn(B, H, T, D, device=dev, dtype=fp_dtype); v = torch.randn_like(k)
    qp = q.view(B, H, G, D)
    res = {'fp': timeit(lambda: F.scaled_dot_product_attention(qp, k, v, scale=scaling), dev, a.repeats),
           'fp-gqa': timeit(lambda: F.scaled_dot_product_attention(q, k, v, scale=scaling, enable_gqa=True), dev, a.repeats)}
    fpb = 2 * H * D * torch.finfo(fp_dtype).bits / 8
    nbytes = {'fp': fpb, 'fp-gqa': fpb}
    if KIVIQuantizer is not None:
        kq, vq = KIVIQuantizer(2, D, 'channel'), KIVIQuantizer(2, D, 'token')
        kp, vp = kq.encode(k), vq.encode(v)
        def kivi():
            kk, vv = kq.decode(kp).to(fp_dtype), vq.decode(vp).to(fp_dtype)
            return F.scaled_dot_product_attention(qp, kk, vv, scale=scaling)
        res['kivi2'] = timeit(kivi, dev, a.repeats)
        nbytes['kivi2'] = (kp.nbytes() + vp.nbytes()) / (B * T)
    kp, vp = kivi2_pack(k, True), kivi2_pack(v, False)
    def kivi_lean():
        kk, vv = kivi2_unpack(*kp, k.shape, fp_dtype), kivi2_unpack(*vp, k.shape, fp_dtype)
        return F.scaled_dot_product_attention(qp, kk, vv, scale=scaling)
    res['kivi2*'] = timeit(kivi_lean, dev, a.repeats)
    nbytes['kivi2*'] = 2 * H * D * (2 + 2 * 16 / 32) / 8
    del kp, vp
    for bits in (2, 1):
        L = synthetic_layer(bits, T, B, H, D, dev, fp_dtype)
        qq = q.to(fp_dtype)
        res[f'nsn{bits}'] = timeit(lambda: fused_decode_attention(qq, L, scaling), dev, a.repeats)
        r = L.rows[0]
        nbytes[f'nsn{bits}'] = (r.pk.nbytes() + r.pv.nbytes()) / r.n_packed
        del L
    return res, nbytes

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

# ---------------------------------------------------------------- report
def table(rows, key, methods):
    hdr = f"{key:>8} | " + " | ".join(f"{m:>17}" for m in methods)
    lines = [hdr, '-' * len(hdr)]
    for r in rows:
        fp = r['ms']['fp']
        lines.append(f"{r[key]:>8} | " + " | ".join(f"{r['ms'][m]:8.3f} ms {fp / r['ms'][m]:5.2f}x" for m in methods))
    return '\n'.join(lines)

def plot(res, path):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [(k, lab) for k, lab in (('context', 'context length (tokens), batch 1'), ('batch', 'batch size')) if res.get(k)]
    fig, axs = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (k, lab) in zip(axs[0], panels):
        rows = res[k]
        for m in rows[0]['ms']:
            ax.plot([r[k] for r in rows], [r['ms'][m] for r in rows], 'o-', label=m)
        ax.set_xscale('log', base=2); ax.set_yscale('log'); ax.set_xlabel(lab); ax.set_ylabel('decode attention, ms (one layer)')
        ax.grid(alpha=.3); ax.legend()
    fig.suptitle(f"{res['device']}: H_kv={res['config']['heads']}, G={res['config']['groups']}, d={res['config']['head_dim']}")
    fig.tight_layout(); fig.savefig(path, dpi=120)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--contexts', default=None, help='comma-separated context lengths (default: 1k..32k on CPU, 1k..64k on GPU)')
    ap.add_argument('--batches', default=None, help='comma-separated batch sizes at --batch-context (default: 1..64 on GPU, none on CPU)')
    ap.add_argument('--batch-context', type=int, default=8192)
    ap.add_argument('--heads', type=int, default=8, help='KV heads (default 8, LLaMA-3-8B-like)')
    ap.add_argument('--groups', type=int, default=4, help='query heads per KV head')
    ap.add_argument('--head-dim', type=int, default=128)
    ap.add_argument('--encode-tokens', type=int, default=None)
    ap.add_argument('--repeats', type=int, default=None)
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    ap.add_argument('--quick', action='store_true', help='smoke run: two context lengths, few repeats')
    ap.add_argument('--out', default=str(ROOT / 'kernels' / 'results'))
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    gpu = dev.type == 'cuda'
    if a.threads: torch.set_num_threads(a.threads)
    ints = lambda s: [int(x) for x in s.split(',') if x]
    ctx = ints(a.contexts) if a.contexts else ([1024, 8192] if a.quick else [1024 * 2 ** i for i in range(7 if gpu else 6)])
    bat = ints(a.batches) if a.batches is not None else ([] if not gpu else [1, 8] if a.quick else [1, 4, 16, 64])
    a.repeats = a.repeats or (3 if a.quick else 20 if gpu else 9)
    a.encode_tokens = a.encode_tokens or (1024 if a.quick else 65536 if gpu else 4096)
    fp_dtype = torch.float16 if gpu else torch.float32
    name = device_name(dev)
    res = dict(device=name, torch=torch.__version__, threads=torch.get_num_threads(), fp_dtype=str(fp_dtype),
               config=dict(heads=a.heads, groups=a.groups, head_dim=a.head_dim, batch_context=a.batch_context),
               path='triton' if gpu else 'torch', context=[], batch=[],
               cpu_compiled_loops=None if gpu else cpu_kernels() is not None)
    cpu_path = 'vectorized torch' + (', compiled 1-bit loops' if res['cpu_compiled_loops'] else '')
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
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    stem = ''.join(ch if ch.isalnum() or ch in '-_.' else '_' for ch in name).strip('_') or 'cpu'
    (out / f'{stem}.json').write_text(json.dumps(res, indent=1))
    plot(res, out / f'{stem}.png')
    print(f"\nwrote {out / (stem + '.json')} and {out / (stem + '.png')}")
    return res

if __name__ == '__main__': main()
