"""Beyond the paper (`nbs/10b_improved.ipynb`): the paper's packed bytes never change, and the `nsn+` methods run end to end."""
import json, os, shutil, subprocess, sys, hashlib
from pathlib import Path
import pytest

# sha256 of every packed tensor of the paper's quantizers (head dim 64) on a fixed input, recorded before `scale_bits`/`fp_sink` existed
PAPER = json.loads('''{"enc1": {"codes": "ee06eb3ab06182030c12840f67e3a0cb9a21114c8ff29ba1d9afb3ec7db53572", "scale": "b3f3b972ac30fa1ed4cde786e413ba56d1a6c964fd9e238919387af3ad980d47", "norm_codes": "d827017452fe36c8342bb5f578d9614282937947a69748a84557540b9e7b086b", "norm_stats": "af055a3eb5a2d8837848cc9bcc79d0d78495c01e95b7257773b9b3c753336f12", "mean_codes": "fa97ce8c258dc294cb14cc65d20084fdbdea01686f62830316dd349491a50adc", "mean_stats": "c21433af5f49e645947ea3973b6e9b8c0589454396a59adf9bc8b0745fa396d2"}, "spec1": "(('bits', 1), ('head_dim', 64), ('block', 64), ('group', 32), ('meta_bits', 4), ('hadamard', (False, None)), ('adaptive', True), ('steps', (True, True, True)), ('codebook', '37b274977a87'))", "enc2": {"codes": "ed432cf3fc07faabce79601238ed5260fd79f25c8ee262be6df45773f2fab7a0", "signs": "0e86bf615dd9ecb50c0757b36bd77d9d599010b4bd911dc3e572d25f5300d952", "scale": "c3503c00afcac59e7c61837451f0bfdcba01fedd477ca3f2f40d46b2834ea67d", "norm_codes": "d827017452fe36c8342bb5f578d9614282937947a69748a84557540b9e7b086b", "norm_stats": "af055a3eb5a2d8837848cc9bcc79d0d78495c01e95b7257773b9b3c753336f12", "mean_codes": "fa97ce8c258dc294cb14cc65d20084fdbdea01686f62830316dd349491a50adc", "mean_stats": "c21433af5f49e645947ea3973b6e9b8c0589454396a59adf9bc8b0745fa396d2"}, "spec2": "(('bits', 2), ('head_dim', 64), ('block', 64), ('group', 32), ('meta_bits', 4), ('hadamard', (False, None)), ('adaptive', True), ('steps', (True, True, True)), ('codebook', 'ac22516b9fd0'))", "nsn-1": [3.149042107077206, 1.3984375], "nsn-2": [2.8231494379978552, 2.3984375]}''')

def test_paper_bytes_unchanged():
    import torch
    from nsnquant.quantizer import NSNQuantizer
    x = torch.randn(2, 3, 128, 64, generator=torch.Generator().manual_seed(1)) * 2 + 0.5
    for b in (1, 2):
        for q in (NSNQuantizer(b, 64, group=32), NSNQuantizer(b, 64, group=32, scale_bits=16)):
            p = q.encode(x)
            assert {k: hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest() for k, t in p.tensors().items()} == PAPER[f'enc{b}']
            assert str(p.spec) == PAPER[f'spec{b}']

def test_sb4_accounting_and_round_trip():
    import torch
    from nsnquant.quantizer import NSNQuantizer
    x = torch.randn(4, 2, 192, 128) * 3 + 1
    for b in (1, 2):
        q, q16 = NSNQuantizer(b, 128, scale_bits=4), NSNQuantizer(b, 128)
        p = q.encode(x)
        assert p.nbytes() * 8 == 8 * 192 * q.accounting_bits_per_token()
        cos = lambda y: torch.nn.functional.cosine_similarity(y, x, dim=-1).mean()
        assert cos(q.decode(p)) > cos(q16.decode(q16.encode(x))) - 1e-3

EXE = shutil.which('nsnquant', path=str(Path(sys.executable).parent)) or shutil.which('nsnquant')

@pytest.mark.skipif(EXE is None, reason='the `nsnquant` console script is not installed')
def test_cli_eval_nsn_plus(tmp_path):
    "`nsnquant eval --methods nsn+-2,nsn+k-1`: measured bits = packed bits + the fp16 sink tokens (8 and 1), nsn+k-1's 2-bit keys counted per layer."
    out = tmp_path / 'r.json'
    e = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([EXE, 'eval', '--methods', 'nsn-2,nsn+-2,nsn+k-1', '--data', 'pydoc', '--windows', '1', '--length', '128',
                        '--no-progress', '--out', str(out)], capture_output=True, text=True, env=e, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    from nsnquant.baselines import bits_per_element
    assert res['results']['nsn-2']['pydoc']['kv_bits'] == bits_per_element('nsn-2', head_dim=64) == 2.3984375
    assert res['results']['nsn+-2']['pydoc']['kv_bits'] == bits_per_element('nsn+-2', head_dim=64) + 16 * 8 / 128
    from nsnquant.models import load_config
    packed = bits_per_element('nsn+k-1', load_config())                                  # 14 of 30 layers with 2-bit keys
    assert packed == pytest.approx(bits_per_element('nsn+-1', head_dim=64) + 14 / 30 * 0.5, rel=1e-12)
    assert res['results']['nsn+k-1']['pydoc']['kv_bits'] == pytest.approx(packed + 16 * 1 / 128, rel=1e-12)

@pytest.mark.cuda
def test_cuda_nsn_plus_generates():
    "On a GPU the encoder leaves 4-bit scales to `q.encode` and decoding runs dequantized: the same tokens as on the CPU path's math."
    import torch
    from nsnquant.models import load_model
    from nsnquant.baselines import make_cache
    from nsnquant.eval import kv_bits
    model, tok = load_model(device='cuda')
    ids = tok('The history of the printing press begins', return_tensors='pt').to('cuda')
    c = make_cache('nsn+-2', model)
    with torch.no_grad(): out = model.generate(**ids, max_new_tokens=80, do_sample=False, cache=c)
    assert out.shape[1] == ids.input_ids.shape[1] + 80
    st = c.layers[0].store
    assert st.pool['k']['scale_codes'].is_cuda and 'scale' not in st.pool['k']
    assert kv_bits(c) > 2.2
