"""Seeded fuzzing of the quantizer core and the KV store: no silent NaN/Inf, a ValueError naming the argument for invalid input,
and bit-identical results for a row alone and inside a batch.

The suite runs a few hundred cases; the full grid is the same code run as a script:

    python tests/test_fuzz.py --cases 10000 [--seed 0]
"""
import argparse, math, random, sys
import pytest
import torch
from nsnquant.quantizer import NSNQuantizer
from nsnquant.store import KVStore
from nsnquant.rope import StandardRoPE

DIMS = (8, 16, 32, 64, 96, 128)

def _config(rng:random.Random) -> dict:
    d = rng.choice(DIMS)
    return dict(bits=rng.choice((1, 2)), head_dim=d, block=rng.choice((2, 4, 8, 16, 64)),
                group=rng.choice([g for g in (8, 16, 32) if d % g == 0]), meta_bits=rng.choice((4, None)),
                randomized=rng.random() < 0.3, seed=rng.randrange(4), normalize1=rng.random() > 0.1, shift=rng.random() > 0.1,
                normalize2=rng.random() > 0.1, hadamard=rng.random() > 0.1 and d & (d - 1) == 0, adaptive=rng.random() > 0.1)

def _input(rng:random.Random, g:torch.Generator, lead:tuple, T:int, d:int) -> torch.Tensor:
    scale = 10 ** rng.uniform(-2, 2)
    x = torch.randn(*lead, T, d, generator=g) * scale
    if rng.random() < 0.5: x[..., rng.randrange(d)] += scale * rng.choice((10, 100)) * (torch.randint(0, 2, (*lead, T), generator=g) * 2 - 1)
    if rng.random() < 0.3 and T: x[..., rng.randrange(T), :] = 0                     # an all-zero token (padding)
    if rng.random() < 0.2: x = x + scale * 3                                          # a large common offset
    return x.to(rng.choice((torch.float32, torch.float16, torch.bfloat16))) if scale * 150 < 6e4 else x

def quantizer_case(seed:int):
    "One valid configuration and input: finite output, every row of a batch bit-identical to itself alone."
    rng, g = random.Random(seed), torch.Generator().manual_seed(seed)
    cfg = _config(rng)
    try: q = NSNQuantizer(**cfg)
    except ValueError as e:                                                           # Hadamard of this size unsupported, say
        assert '`' in str(e), e; return
    B, H, nb = rng.randint(1, 3), rng.randint(1, 3), rng.randint(0, 3)
    x = _input(rng, g, (B, H), nb * q.block, q.head_dim)
    rope = StandardRoPE(q.head_dim) if rng.random() < 0.5 else None
    pos = torch.arange(nb * q.block) + rng.randrange(1000) if rope else None
    p = q.encode(x, pos, rope)
    y = q.decode(p, pos, rope)
    assert y.shape == x.shape and torch.isfinite(y).all(), cfg
    for b in range(B):                                                                # a row alone: the same bytes
        pb = q.encode(x[b:b + 1], pos, rope)
        for k, t in p.tensors().items(): assert torch.equal(t[b:b + 1], pb.tensors()[k]), (cfg, k)

BAD = [  # (constructor or call, the argument the message must name)
    (lambda: NSNQuantizer(bits=3), '`bits`'), (lambda: NSNQuantizer(bits=2.0), '`bits`'), (lambda: NSNQuantizer(bits=True), '`bits`'),
    (lambda: NSNQuantizer(head_dim=60), '`head_dim`'), (lambda: NSNQuantizer(head_dim=0), '`head_dim`'),
    (lambda: NSNQuantizer(block=3), '`block`'), (lambda: NSNQuantizer(block=-2), '`block`'), (lambda: NSNQuantizer(group=0), '`group`'),
    (lambda: NSNQuantizer(head_dim=64, group=48), '`head_dim`'), (lambda: NSNQuantizer(meta_bits=0), '`meta_bits`'),
    (lambda: NSNQuantizer(meta_bits=8), '`meta_bits`'), (lambda: NSNQuantizer(codebook=torch.zeros(256, 8)), '`codebook`'),
    (lambda: NSNQuantizer(bits=1, codebook=torch.full((256, 8), float('nan'))), '`codebook`'),
    (lambda: NSNQuantizer(bits=2, head_dim=64).encode(torch.randn(64, 32)), '`x`'),
    (lambda: NSNQuantizer(bits=2, head_dim=64).encode(torch.randn(65, 64)), '`x`'),
    (lambda: NSNQuantizer(bits=2, head_dim=64).encode(torch.full((64, 64), float('inf'))), '`x`'),
    (lambda: NSNQuantizer(bits=2, head_dim=64).encode(torch.randn(64, 64) * 1e-7), '`x`'),
    (lambda: NSNQuantizer(bits=2, head_dim=64).encode(torch.randn(64, 64), torch.arange(3), StandardRoPE(64)), '`positions`'),
    (lambda: NSNQuantizer(bits=1, head_dim=64).decode(NSNQuantizer(bits=1, head_dim=64, seed=1, randomized=True).encode(torch.randn(64, 64))), '`p`'),
]

def store_case(seed:int):
    "Random rows and updates through a KVStore: every row's view equals the same row fed alone."
    rng, g = random.Random(seed), torch.Generator().manual_seed(seed)
    d, H, bits = rng.choice((32, 64)), rng.randint(1, 2), rng.choice((1, 2))
    sink, window, W = rng.choice((0, 2)), rng.choice((0, 8)), rng.choice((8, 64))
    rope = StandardRoPE(d)
    mk = lambda: KVStore(NSNQuantizer(bits, d, W), NSNQuantizer(bits, d, W), rope, sink=sink, window=window)
    lens = [rng.randint(0, 3 * W) for _ in range(rng.randint(1, 3))]
    B, T = len(lens), max(max(lens), 1)
    skip = torch.tensor([T - n for n in lens])
    batch, alone = mk(), [mk() for _ in lens]
    k, v = torch.randn(B, H, T, d, generator=g) * 2 + 1, torch.randn(B, H, T, d, generator=g)
    pos = (torch.arange(T) - skip[:, None]).clamp(min=0)
    batch.append(rope.apply(k, pos), v, pos=0, skip=skip)
    for b, n in enumerate(lens):
        if n: alone[b].append(rope.apply(k[b:b + 1, :, T - n:], torch.arange(n)[None]), v[b:b + 1, :, T - n:], pos=0)
    nxt = torch.tensor(lens)
    for _ in range(rng.randint(1, 4)):
        n = rng.choice((1, 1, rng.randint(2, 2 * W)))
        k, v = torch.randn(B, H, n, d, generator=g), torch.randn(B, H, n, d, generator=g)
        p = nxt[:, None] + torch.arange(n)
        batch.append(rope.apply(k, p), v, pos=nxt)
        for b in range(B): alone[b].append(rope.apply(k[b:b + 1], p[b:b + 1]), v[b:b + 1], pos=nxt[b:b + 1])
        nxt = nxt + n
    kb, vb = batch.view()
    for b, s in enumerate(alone):
        ks, vs = s.view()
        n = ks.shape[2]
        assert torch.isfinite(kb).all() and torch.equal(kb[b:b + 1, :, kb.shape[2] - n:], ks) and torch.equal(vb[b:b + 1, :, vb.shape[2] - n:], vs), (seed, b)

@pytest.mark.parametrize('chunk', range(4))
def test_quantizer_fuzz(chunk):
    for seed in range(chunk * 60, (chunk + 1) * 60): quantizer_case(seed)

def test_invalid_input_names_the_argument():
    for fn, arg in BAD:
        with pytest.raises(ValueError) as e: fn()
        assert arg in str(e.value), (arg, str(e.value))

def test_store_fuzz():
    for seed in range(40): store_case(seed)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cases', type=int, default=10000); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--store-cases', type=int, default=500)
    a = ap.parse_args()
    for i in range(a.cases):
        quantizer_case(a.seed + i)
        if i % 1000 == 999: print(f"{i + 1} quantizer cases", flush=True)
    for i in range(a.store_cases): store_case(a.seed + i)
    print(f"{a.cases} quantizer cases and {a.store_cases} store cases: no NaN, rows alone = rows in a batch")
