"""nsnquant.triton_kernels outside the notebook: importing it leaves the environment alone, the Triton kernels compile for Hopper without
a GPU, and the compiled kernels run on a GPU (`cuda` marker, skipped without one). The interpreted kernels and the CPU path are
tested in nbs/04b_attention.ipynb and nbs/04c_triton.ipynb."""
import os, subprocess, sys, textwrap
from pathlib import Path
import pytest
import torch

def rel_err(a, b): return float((a.float() - b.float()).abs().max() / b.float().abs().max())

def test_import_sets_no_environment():
    "`import nsnquant` (and its kernels) must not set TRITON_INTERPRET or anything else in os.environ (its dependencies, imported first, may)."
    code = ("import os, torch, transformers.cache_utils, transformers.masking_utils, transformers.integrations.sdpa_attention\n"
            "from transformers import AttentionInterface, AutoModelForCausalLM, AutoTokenizer, DynamicCache\n"
            "try: import triton\nexcept ImportError: pass\n"
            "before = dict(os.environ); import nsnquant.cache, nsnquant.triton_kernels; print(sorted(set(os.environ) ^ set(before)))")
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == '[]', r.stdout

AOT = textwrap.dedent('''
    import os; os.environ["TRITON_INTERPRET"] = "0"
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    import nsnquant.triton_kernels as K
    def compile(fn, sig, const, **opt):
        sig = {**sig, **{k: "constexpr" for k in const}}
        return triton.compile(ASTSource(fn=fn, signature=sig, constexprs=const), target=GPUTarget("cuda", 90, 32), options=opt)
    u8, f16, f32, i64 = "*u8", "*fp16", "*fp32", "*i64"
    dec = dict(q_ptr=f32, fq_ptr=f32, kc_ptr=u8, ks_ptr=u8, ksc_ptr=f16, knc_ptr=u8, kns_ptr=f16, kmc_ptr=u8, kms_ptr=f16,
               vc_ptr=u8, vs_ptr=u8, vsc_ptr=f16, vnc_ptr=u8, vns_ptr=f16, vmc_ptr=u8, vms_ptr=f16, cbk_ptr=f32, cbv_ptr=f32,
               rot_ptr=f32, ew_ptr=f32, tab_ptr=i64, nblk_ptr=i64, lo_ptr=i64, m_ptr=f32, l_ptr=f32, acch_ptr=f32, accm_ptr=f32,
               H="i32", G="i32", TSTRIDE="i32", BPS="i32", S="i32")
    enc = dict(x_ptr=f16, cos_ptr=f32, sin_ptr=f32, rsign_ptr=f32, cb_ptr=f32, c2_ptr=f32, h_ptr=f32, s_ptr=f32, codes_ptr=u8,
               signs_ptr=u8, scale_ptr=f16, nc_ptr=u8, ns_ptr=f16, mc_ptr=u8, ms_ptr=f16, T="i32", NBLK="i32", CS_DIV="i32",
               CS_STRIDE="i32", SQRT_D="fp32")
    for bits, D in ((1, 128), (2, 64)):
        c = compile(K._nsn_decode_attn_kernel, dec, dict(KBITS=bits, VBITS=bits, D=D, W=64, GROUP=32, BLOCK_G=16,
                    PREC_S="tf32x3", PREC_V="tf32"), num_warps=8, num_stages=2)
        assert "cubin" in c.asm
        c = compile(K._nsn_encode_kernel, enc, dict(D=D, W=64, GROUP=32, BITS=bits, ROPE=True, RANDOM=bits == 2, BLOCK_T=4),
                    num_warps=8, enable_fp_fusion=False)
        assert "cubin" in c.asm
    print("compiled")
''')

def test_kernels_compile_for_hopper():
    "Both kernels compile to sm_90 machine code with the bundled ptxas: no GPU needed."
    triton = pytest.importorskip('triton')
    if not (Path(triton.__file__).parent / 'backends' / 'nvidia').is_dir(): pytest.skip('triton without its NVIDIA backend')
    env = {**os.environ, 'TRITON_INTERPRET': '0', 'TRITON_DEFAULT_FP_FUSION': '1'}
    r = subprocess.run([sys.executable, '-c', AOT], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and 'compiled' in r.stdout, (r.stdout + r.stderr)[-4000:]

@pytest.mark.cuda
@pytest.mark.parametrize('bits', [1, 2])
def test_compiled_kernels_on_gpu(bits):
    from nsnquant.attention import reference_decode_attention, torch_fused_decode_attention
    from nsnquant.triton_kernels import triton_decode_attention, triton_encode, fused_decode_attention
    from nsnquant.quantizer import NSNQuantizer
    from nsnquant.rope import StandardRoPE
    from nsnquant.store import toy_store
    s = toy_store(bits, lens=(1500, 700), H=4, D=128, sink=4, steps=3, device='cuda')   # left-padded rows, then 3 decode steps
    q = torch.randn(2, 16, 1, 128, device='cuda')
    ref = reference_decode_attention(q, s, 0.09)
    assert rel_err(fused_decode_attention(q, s, 0.09), ref) < 5e-3                      # tf32x3 scores, tf32 values
    assert rel_err(triton_decode_attention(q, s, 0.09, precision=('ieee', 'ieee')), ref) < 1e-4
    assert rel_err(torch_fused_decode_attention(q, s, 0.09), ref) < 1e-4
    s.repeat_interleave(2); s.select([3, 0, 1])                                          # rows sharing blocks
    q = torch.randn(3, 16, 1, 128, device='cuda')
    assert rel_err(triton_decode_attention(q, s, 0.09, precision=('ieee', 'ieee')), reference_decode_attention(q, s, 0.09)) < 1e-4
    x = torch.randn(4, 8, 256, 128, device='cuda') * 2
    qz = NSNQuantizer(bits, 128)
    pos = torch.arange(256, device='cuda') + 100
    a, b = triton_encode(qz, x, pos, StandardRoPE(128)), qz.encode(x, pos, StandardRoPE(128))
    for k, t in b.tensors().items():
        if k == 'scale': assert ((getattr(a, k).float() - t.float()).abs() <= t.float().abs() * 2 ** -10).all()
        else: assert (getattr(a, k) == t).float().mean() > 0.9999, k                # cuBLAS vs kernel near-ties only
