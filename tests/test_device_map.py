"""A model split by accelerate (`load_model(device_map="auto", max_memory=...)`): with too little CPU memory for the whole model its
last layers go to `disk` (offloaded, run on the CPU through accelerate's hooks), and NSNQuantCache gives the same perplexity and the
same greedy generation as on the unsplit model, exactly. On a CPU-only machine both parts execute on `cpu`: a split across two
accelerators (each layer's store on its own GPU) is not exercised here."""
import pytest, torch

@pytest.fixture(scope='module')
def models(tmp_path_factory):
    from nsnquant.models import load_model
    one, tok = load_model()
    split, _ = load_model(device_map='auto', max_memory={'cpu': '300MiB'}, offload_folder=str(tmp_path_factory.mktemp('offload')))
    return one, split, tok

def test_split_is_real(models):
    one, split, _ = models
    where = split.hf_device_map
    assert set(where.values()) == {'cpu', 'disk'}, where
    assert where['model.layers.0'] == 'cpu' and where['model.layers.29'] == 'disk'
    assert hasattr(split.model.layers[29], '_hf_hook') and not hasattr(one.model.layers[29], '_hf_hook')
    assert split.model.layers[29].self_attn.q_proj.weight.device.type == 'meta'     # its weights live on disk until it runs

@pytest.mark.parametrize('method', ['fp', 'nsn-2', 'nsn-1'])
def test_quantized_prefill_ppl_equal(models, method):
    from nsnquant.data import load_tokens
    from nsnquant.eval import ppl_windows
    one, split, tok = models
    ids = load_tokens('pydoc', tok, 'eval', max_tokens=256)
    a, b = (ppl_windows(m, ids, method, length=128, n=2) for m in (one, split))
    assert a['window_nll'] == b['window_nll'] and a['kv_bits'] == b['kv_bits']

@pytest.mark.parametrize('attention', ['dequant', 'fused'])
def test_generation_equal(models, attention):
    from nsnquant.cache import NSNQuantCache
    one, split, tok = models
    ids = tok('def fibonacci(n):\n    "Return the n-th Fibonacci number."\n' * 4, return_tensors='pt')   # > 64 tokens: blocks get packed
    outs, caches = [], []
    for m in (one, split):
        c = NSNQuantCache(m, bits=2, attention=attention)
        outs.append(m.generate(**ids, cache=c, max_new_tokens=12, do_sample=False)); caches.append(c)
    assert ids.input_ids.shape[1] > 64
    assert torch.equal(outs[0], outs[1]) and caches[0].nbytes() == caches[1].nbytes()
    l0, l29 = caches[1].layers[0].store, caches[1].layers[29].store
    assert l0.device == l29.device == torch.device('cpu') and int(l29.nblk.sum()) > 0   # the offloaded layer's store is filled, on its device

def test_cli_device_map_equals_one_device(tmp_path):
    "`nsnquant eval --device-map auto --max-memory cpu=300MiB --offload-folder ...` gives the same JSON as the unsplit model."
    import json, os, subprocess, sys
    base = [sys.executable, '-m', 'nsnquant.cli', 'eval', '--methods', 'fp,nsn-2', '--data', 'pydoc', '--windows', '1', '--length', '128', '--no-progress']
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'}
    outs = []
    for extra, name in (([], 'one.json'), (['--device-map', 'auto', '--max-memory', 'cpu=300MiB', '--offload-folder', str(tmp_path/'off')], 'split.json')):
        p = subprocess.run(base + extra + ['--out', str(tmp_path/name)], capture_output=True, text=True, env=env, timeout=600)
        assert p.returncode == 0, p.stderr[-2000:]
        outs.append(json.loads((tmp_path/name).read_text()))
    drop = lambda x: ({k: drop(v) for k, v in x.items() if k not in ('seconds', 'wall_seconds', 'seconds_this_run')} if isinstance(x, dict)
                      else [drop(v) for v in x] if isinstance(x, list) else x)
    assert outs[0]['meta']['placement'] is None and set(outs[1]['meta']['placement']) == {'cpu', 'disk'}, outs[1]['meta']   # really split
    outs[1]['meta']['placement'] = None
    assert drop(outs[0]) == drop(outs[1])                                    # every perplexity, per-window NLL and bit count
