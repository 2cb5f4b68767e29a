"""Model families other than the default: every model the cache accepts is exact, the rest is refused from the config.

Small random-weight models (2 layers, hidden 256) of each family, a 150-token prompt and 20 greedy steps:
- with the identity quantizer, the logits equal a plain `DynamicCache` to 1e-4 (the cache's bookkeeping: RoPE inversion,
  channel order, sliding windows, block drops);
- with NSNQuantizer at 2 bits, nothing is NaN and the fused path gives the dequantized path's tokens (and logits to 1e-3)."""
import pytest, torch
import transformers as tf
from transformers import DynamicCache
from nsnquant.cache import NSNQuantCache, IdentityQuantizer
from nsnquant.models import check_supported, model_kv

BASE = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=512, max_position_embeddings=1024, pad_token_id=0, bos_token_id=1, eos_token_id=2)
ONE_KV = {**BASE, 'num_key_value_heads': 1}
BASE_CFG = lambda: tf.LlamaConfig(**BASE)

FAMILIES = {
    'llama-64': (tf.LlamaConfig, tf.LlamaForCausalLM, dict(BASE, head_dim=64)),
    'llama-80': (tf.LlamaConfig, tf.LlamaForCausalLM, dict(BASE, head_dim=80)),
    'llama-128': (tf.LlamaConfig, tf.LlamaForCausalLM, dict(BASE, head_dim=128)),
    'llama-256': (tf.LlamaConfig, tf.LlamaForCausalLM, dict(BASE, head_dim=256)),
    'qwen2': (tf.Qwen2Config, tf.Qwen2ForCausalLM, BASE),
    'qwen3': (tf.Qwen3Config, tf.Qwen3ForCausalLM, dict(BASE, head_dim=64)),
    'mistral-window64': (tf.MistralConfig, tf.MistralForCausalLM, dict(BASE, sliding_window=64)),
    'gemma2': (tf.Gemma2Config, tf.Gemma2ForCausalLM, dict(ONE_KV, head_dim=256, sliding_window=64, attn_logit_softcapping=None)),
    'gemma3': (tf.Gemma3TextConfig, tf.Gemma3ForCausalLM, dict(ONE_KV, head_dim=256, sliding_window=64,
               layer_types=['sliding_attention', 'full_attention'])),
    'phi3-partial': (tf.Phi3Config, tf.Phi3ForCausalLM, dict(BASE, partial_rotary_factor=0.5)),
    'cohere': (tf.CohereConfig, tf.CohereForCausalLM, BASE),
    'gpt_neox': (tf.GPTNeoXConfig, tf.GPTNeoXForCausalLM, dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                 num_attention_heads=4, vocab_size=512, rotary_pct=0.25, pad_token_id=0, bos_token_id=1, eos_token_id=2)),
    'stablelm': (tf.StableLmConfig, tf.StableLmForCausalLM, dict(BASE, partial_rotary_factor=0.25)),
    'olmo2': (tf.Olmo2Config, tf.Olmo2ForCausalLM, BASE),
    'granite': (tf.GraniteConfig, tf.GraniteForCausalLM, BASE),
    'llama-dynamic': (tf.LlamaConfig, tf.LlamaForCausalLM, dict(BASE, max_position_embeddings=64,
                      rope_parameters=dict(rope_type='dynamic', factor=2.0, rope_theta=10000.0))),
    'smollm3-no-rope-layer': (tf.SmolLM3Config, tf.SmolLM3ForCausalLM, dict(BASE, no_rope_layers=[1, 0])),
    'cohere2': (tf.Cohere2Config, tf.Cohere2ForCausalLM, dict(BASE, sliding_window=64, layer_types=['sliding_attention', 'full_attention'])),
    'glm-partial': (tf.GlmConfig, tf.GlmForCausalLM, dict(BASE, head_dim=64, partial_rotary_factor=0.5)),
    'gpt_oss': (tf.GptOssConfig, tf.GptOssForCausalLM, dict(num_hidden_layers=2, hidden_size=256, intermediate_size=256, num_attention_heads=4,
                num_key_value_heads=2, head_dim=64, num_local_experts=2, num_experts_per_tok=1, vocab_size=512, sliding_window=64)),
    'llama-yarn': (tf.LlamaConfig, tf.LlamaForCausalLM, dict(BASE, max_position_embeddings=256, rope_parameters=dict(rope_type='yarn', factor=4.0, rope_theta=10000.0,
                   original_max_position_embeddings=64))),
    'phi3-longrope': (tf.Phi3Config, tf.Phi3ForCausalLM, dict(BASE, max_position_embeddings=256, original_max_position_embeddings=64,
                      rope_parameters=dict(rope_type='longrope', rope_theta=10000.0, short_factor=[1.0] * 32, long_factor=[2.0] * 32,
                                           original_max_position_embeddings=64))),
}

def build(name):
    "A fresh model each time (dynamic RoPE keeps state between calls), same weights for a given name."
    cfg_cls, model_cls, kw = FAMILIES[name]
    torch.manual_seed(0)
    return model_cls(cfg_cls(**kw)).eval()

@torch.no_grad()
def greedy(model, cache, ids, steps=20):
    "Logits of the prompt's last position and of every greedy step [steps + 1, vocab], and the tokens chosen."
    out = model(ids, cache=cache, use_cache=True)
    logits, toks = [out.logits[0, -1]], []
    for _ in range(steps):
        t = logits[-1].argmax()[None, None]; toks.append(int(t))
        logits.append(model(t, cache=cache, use_cache=True).logits[0, -1])
    return torch.stack(logits).float(), toks

def prompt(model, T=150):
    return torch.randint(3, model.config.get_text_config().vocab_size, (1, T), generator=torch.Generator().manual_seed(1))

@pytest.mark.parametrize('name', FAMILIES)
def test_identity_equals_dynamic_cache(name):
    ref_model = build(name); ids = prompt(ref_model)
    ref, ref_toks = greedy(ref_model, DynamicCache(config=ref_model.config), ids)
    model = build(name); D = check_supported(model).head_dim
    ident = IdentityQuantizer(64, D)
    for sliding_fp in (0, 512):                                    # sliding windows packed (and dropped), or in full precision
        got, toks = greedy(model, NSNQuantCache(model, key_quantizer=ident, value_quantizer=ident, sliding_fp=sliding_fp), ids)
        assert (got - ref).abs().max() < 1e-4, (name, sliding_fp, float((got - ref).abs().max()))
        assert toks == ref_toks
        model = build(name)

@pytest.mark.parametrize('name', FAMILIES)
def test_nsn2_fused_equals_dequant(name):
    model = build(name); ids = prompt(model)
    deq, deq_toks = greedy(model, NSNQuantCache(model, bits=2, sliding_fp=0), ids)
    if check_supported(model).learned_sinks:                     # GPT-OSS: only its own attention adds the sinks: fused refused
        assert not deq.isnan().any()
        with pytest.raises(ValueError, match='learned attention-sink'): NSNQuantCache(model, attention='fused')
        return
    model = build(name)
    fused, fused_toks = greedy(model, NSNQuantCache(model, bits=2, sliding_fp=0, attention='fused'), ids)
    assert not deq.isnan().any() and not fused.isnan().any()
    assert fused_toks == deq_toks, name
    assert (fused - deq).abs().max() < 1e-3, (name, float((fused - deq).abs().max()))

PRE_ROPE = [n for n in FAMILIES if n not in ('gpt_neox', 'phi3-partial', 'phi3-longrope', 'llama-dynamic')]  # fused QKV; keys after RoPE

@pytest.mark.parametrize('name', PRE_ROPE)
def test_stored_keys_are_the_models_pre_rope_keys(name):
    "The RoPE inversion uses the model's own pairing and partial rotation: the store holds the keys the model had before RoPE."
    model = build(name); ids = prompt(model, 130)
    pre = model_kv(model, ids, pre_rope=True)                     # hooked k_proj / k_norm outputs, per layer [1, H, T, D]
    D = check_supported(model).head_dim; q = IdentityQuantizer(64, D)
    c = NSNQuantCache(model, key_quantizer=q, value_quantizer=q, sliding_fp=0)
    with torch.no_grad(): model(ids, cache=c, use_cache=True)
    for l, (k, _) in zip(c.layers, pre):
        s = l.store
        x = s.pool['k']['x'][s.table[0, :2]]                      # the two packed blocks [2, H, 64, D], canonical channel order
        if l.perm is not None: x = x[..., l.inv_perm]
        torch.testing.assert_close(x.transpose(0, 1).flatten(1, 2).float(), k[0, :, :128], atol=2e-5, rtol=1e-4)

def test_sliding_layers_hold_at_most_their_window():
    model, full_model = build('mistral-window64'), build('llama-64')
    ids = prompt(model, 1000)
    c, full = NSNQuantCache(model, bits=2, sliding_fp=0), NSNQuantCache(full_model, bits=2)
    with torch.no_grad():
        model(ids, cache=c, use_cache=True); full_model(ids, cache=full, use_cache=True)
        for t in range(3): model(ids[:, t:t + 1], cache=c, use_cache=True)
    for l in c.layers:                        # 1003 tokens, window 64: only the blocks that reach into the window are left
        assert int(l.store.lengths.max()) < 64 + 64 and int(l.store.nblk.max()) <= 1
    assert c.nbytes() < full.nbytes() / 2

def test_softcapping_refuses_nsnquant_attention():
    model = build('gemma2'); model.config.attn_logit_softcapping = 50.0
    for kw in (dict(attention='fused'), dict(quantized_prefill=True)):
        with pytest.raises(ValueError, match='soft-caps its attention logits'): NSNQuantCache(model, **kw)
    NSNQuantCache(model)                                           # the dequantized path is served
    oss = tf.GptOssConfig(num_hidden_layers=2, hidden_size=256, intermediate_size=256, num_attention_heads=4, num_key_value_heads=2,
                          head_dim=64, num_local_experts=2, num_experts_per_tok=1, vocab_size=512)
    with pytest.raises(ValueError, match='learned attention-sink logits'): NSNQuantCache(oss, attention='fused')
    assert check_supported(oss).learned_sinks and not check_supported(BASE_CFG()).learned_sinks

REFUSED = {
    'gpt2': (lambda: tf.GPT2Config(n_layer=2, n_embd=64, n_head=2), 'no rotary embedding'),
    'deepseek_v3': (lambda: tf.DeepseekV3Config(num_hidden_layers=2), 'multi-head latent attention'),
    'llama4_text': (lambda: tf.Llama4TextConfig(num_hidden_layers=4), 'chunked_attention'),
    'llama': (lambda: tf.LlamaConfig(**dict(BASE, head_dim=12)), 'head_dim `12`'),
}

@pytest.mark.parametrize('name', REFUSED)
def test_refused_from_the_config(name):
    make, why = REFUSED[name]
    cfg = make()
    for f in (check_supported, NSNQuantCache):
        with pytest.raises(ValueError) as e: f(cfg)
        assert f'model type `{name}`' in str(e.value) and why in str(e.value), str(e.value)
