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
