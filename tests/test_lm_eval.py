"""`--model nsnquant` through lm-evaluation-harness on a local task: lm_eval's per-request loglikelihoods and generations equal
the project's own scoring of the same requests (one forward through a fresh cache of the method; `greedy_generate`)."""
import json, os, subprocess, sys, time
from pathlib import Path
import pytest, torch

lm_eval = pytest.importorskip('lm_eval', reason="lm_eval is not installed: pip install 'nsnquant[eval]'")
from lm_eval.tasks import TaskManager
from nsnquant.lmeval import NSNQuantLM, lm_eval_table
from nsnquant.models import load_model
from nsnquant.baselines import make_cache
from nsnquant.eval import ppl_windows
from nsnquant.tasks import greedy_generate

ROOT = Path(__file__).resolve().parents[1]
METHODS = ('fp', 'nsn-2', 'nsn-1')
STORIES = [  # each context is longer than one 64-token block, so the quantized caches change the scores
    ("Tom had three red apples and two green pears in his basket. On the way home he met his friend Anna, who was hungry, so he "
     "gave her one apple and one pear. Then he walked on past the old mill and the river, where the ducks were swimming in the "
     "afternoon sun. When he got home his mother asked how many apples he still had. Tom said he had", ['two', 'three'], 0),
    ("The library opens at nine in the morning and closes at six in the evening on weekdays. On Saturdays it opens at ten and "
     "closes at two, and on Sundays it stays closed all day. Maria wanted to return her books on Sunday afternoon, but when she "
     "arrived she found the doors locked, because on Sundays the library is", ['closed', 'open'], 0),
    ("A train leaves the station at noon and travels north at a steady speed of sixty miles per hour. Two hours later a second "
     "train leaves the same station on the same track, going north at eighty miles per hour. The passengers on the first train "
     "read, sleep and look out of the windows at the fields. After two hours the first train has travelled", ['120 miles', '80 miles'], 0),
]
PROMPTS = ["Question: What is the colour of the sky on a clear day?\nAnswer:", "Question: How many legs does a cat have?\nAnswer:"]
MAX_GEN = 6

@pytest.fixture(scope='module')
def mt():
    torch.set_num_threads(1)
    return load_model()

@pytest.fixture(scope='module')
def task_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('lm_eval_tasks')
    (d/'mc.jsonl').write_text(''.join(json.dumps(dict(context=c, choices=ch, label=l)) + '\n' for c, ch, l in STORIES))
    (d/'gen.jsonl').write_text(''.join(json.dumps(dict(question=p, answer='')) + '\n' for p in PROMPTS))
    common = lambda name, f: f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {d/f}\ntest_split: test\n"
    (d/'tiny_mc.yaml').write_text(common('tiny_mc', 'mc.jsonl') + 'output_type: multiple_choice\ndoc_to_text: "{{context}}"\n'
                                  'doc_to_choice: "{{choices}}"\ndoc_to_target: label\nmetric_list:\n  - metric: acc\n')
    (d/'tiny_gen.yaml').write_text(common('tiny_gen', 'gen.jsonl') + 'output_type: generate_until\ndoc_to_text: "{{question}}"\n'
                                   f'doc_to_target: answer\ngeneration_kwargs:\n  until: ["\\n"]\n  max_gen_toks: {MAX_GEN}\n  do_sample: false\n'
                                   'metric_list:\n  - metric: exact_match\n')
    return d

@pytest.fixture(scope='module')
def runs(mt, task_dir):
    "lm_eval.simple_evaluate with --model nsnquant (by its registered name) per method: {method: (samples, seconds)}."
    model, tok = mt
    tm, out = TaskManager(include_path=str(task_dir), include_defaults=False), {}
    for m in METHODS:
        t0 = time.time()
        res = lm_eval.simple_evaluate(model='nsnquant', model_args=dict(pretrained=model, tokenizer=tok, method=m),
                                      tasks=['tiny_mc', 'tiny_gen'], task_manager=tm, log_samples=True)
        out[m] = res['samples'], time.time() - t0
    return out

def own_loglikelihood(model, tok, method, context, continuation):
    "Independently: tokenize context + continuation, one forward through make_cache(method, quantized_prefill=True), sum log p."
    ctx, whole = tok(context)['input_ids'], tok(context + continuation)['input_ids']
    assert whole[:len(ctx)] == ctx and len(whole) > len(ctx)
    x = torch.tensor([whole])
    with torch.no_grad(): logits = model(x, cache=make_cache(method, model, quantized_prefill=True), use_cache=True).logits[0].float()
    lp = torch.log_softmax(logits[len(ctx) - 1:-1], -1)
    return lp.gather(1, x[0, len(ctx):, None]).sum().item()

def lls(samples):
    return [(a, r[0][0]) for s in samples['tiny_mc'] for a, r in zip(s['arguments'], s['resps'])]

@pytest.mark.parametrize('method', METHODS)
def test_loglikelihoods_equal_our_scoring(mt, runs, method):
    model, tok = mt
    got = lls(runs[method][0])
    assert len(got) == sum(len(ch) for _, ch, _ in STORIES)
    diff = []
    for (ctx, cont), ll in got:
        assert len(tok(ctx)['input_ids']) > 64                      # more than one quantized block
        diff.append(abs(ll - own_loglikelihood(model, tok, method, ctx, cont)))
    print(method, 'max |lm_eval - own| loglikelihood', max(diff))
    assert max(diff) < 1e-5, (method, diff)

@pytest.mark.parametrize('method', METHODS)
def test_generations_equal_greedy_generate(mt, runs, method):
    model, tok = mt
    gens = runs[method][0]['tiny_gen']
    assert len(gens) == len(PROMPTS)
    print(method, [s['resps'][0][0] for s in gens])
    assert any(s['resps'][0][0].strip() for s in gens)
    for s in gens:
        ctx, kw = s['arguments'][0]
        assert kw['until'] == ['\n'] and kw['max_gen_toks'] == MAX_GEN
        ids = torch.tensor([tok(ctx)['input_ids']])
        new = greedy_generate(model, ids, make_cache(method, model), MAX_GEN, tok.eos_token_id, stop=lambda n: '\n' in tok.decode(n))
        assert s['resps'][0][0] == tok.decode(new, skip_special_tokens=True).split('\n')[0], method

def test_the_cache_changes_the_scores(runs):
    "fp and nsn-2 differ on every request; nsn-1 moves the loglikelihoods further from fp than nsn-2 on average."
    ll = {m: [l for _, l in lls(runs[m][0])] for m in METHODS}
    d2 = [abs(a - b) for a, b in zip(ll['nsn-2'], ll['fp'])]
    d1 = [abs(a - b) for a, b in zip(ll['nsn-1'], ll['fp'])]
    print('mean |dLL| vs fp: nsn-2', sum(d2) / len(d2), 'min', min(d2), 'nsn-1', sum(d1) / len(d1), {m: round(runs[m][1], 1) for m in METHODS})
    assert min(d2) > 1e-4
    assert sum(d1) > sum(d2)

def test_rolling_equals_protocol_1(mt):
    "loglikelihood_rolling: windows of max_length overlapping by one token, each scored like ppl_windows scores one window."
    from lm_eval.api.instance import Instance
    model, tok = mt
    text = STORIES[0][0]
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)['input_ids']
    lm = NSNQuantLM(model, tokenizer=tok, method='nsn-2', max_length=70)
    got, = lm.loglikelihood_rolling([Instance('loglikelihood_rolling', {}, (text,), 0)])
    wins = [ids[i:i + 70] for i in range(0, len(ids) - 1, 69)]
    assert len(wins) == 2 and sum(len(w) - 1 for w in wins) == len(ids) - 1
    ref = sum(-ppl_windows(model, torch.tensor(w), 'nsn-2', length=len(w), n=1)['nll'] * (len(w) - 1) for w in wins)
    assert got == pytest.approx(ref, abs=1e-4)

def test_model_args_errors_before_loading():
    for args, msg in ((dict(method='nsn-3'), '`method`'), (dict(bits=3), '`bits`'), (dict(blocks=64), 'unknown model_args `blocks`'),
                      (dict(method='fp', sink=4), '`sink`'), (dict(batch_size=8), 'batch_size')):
        t0 = time.time()
        with pytest.raises(ValueError, match=msg): NSNQuantLM.create_from_arg_obj(args)
        assert time.time() - t0 < 1

def test_lm_eval_table_offline_names_the_dataset():
    "A hub task offline: one line naming the task and its dataset, at once and before any model is loaded."
    code = ("import lm_eval.tasks as t, pathlib; from nsnquant.lmeval import lm_eval_table\n"
            "lm_eval_table('no-such-model', 'fp', 'gsm8k', include_path=str(pathlib.Path(t.__file__).parent/'gsm8k'), include_defaults=False)")
    env = {**os.environ, 'HF_DATASETS_OFFLINE': '1', 'HF_HUB_OFFLINE': '1', 'PYTHONPATH': str(ROOT)}
    t0 = time.time()
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=120)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 1 and time.time() - t0 < 60, r.stderr[-2000:]
    assert last.startswith('nsnquant.tasks.DatasetUnavailableError') and 'gsm8k' in last and 'openai/gsm8k' in last, last

@pytest.mark.slow
def test_cli(task_dir):
    "python -m nsnquant.lmeval runs lm_eval's command line with --model nsnquant (slow: the CLI indexes all of lm_eval's tasks)."
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([sys.executable, '-m', 'nsnquant.lmeval', '--model', 'nsnquant', '--model_args', 'pretrained=smollm2,bits=2,sink=4',
                        '--tasks', 'tiny_mc', '--include_path', str(task_dir), '--limit', '1'], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'tiny_mc' in r.stdout and 'acc' in r.stdout, r.stdout[-2000:]
