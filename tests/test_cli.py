"""The `nsnquant` command's failures, as a user meets them: one line on stderr naming the argument, no traceback, exit status 2
for an argument that cannot work (before any model loads) and 1 for a failure while running."""
import os, shutil, subprocess, sys
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent
EXE = shutil.which('nsnquant', path=str(BIN)) or shutil.which('nsnquant')

USAGE = [  # (arguments, a phrase the message must contain)
    (['generate', '--prompt', 'x', '--model', '/nonexistent/model'], '`--model` `/nonexistent/model` does not exist'),
    (['generate', '--prompt', 'x', '--dtype', 'float33'], '`--dtype` must be one of'),
    (['generate', '--prompt', 'x', '--dtype', 'int8'], '`--dtype` must be one of'),
    (['generate', '--prompt', 'x', '--device', 'cuda'], 'no CUDA GPU'),
    (['generate', '--prompt', 'x', '--sink', '-1'], '`--sink` must be >= 0'),
    (['generate', '--prompt', ''], '`--prompt` must not be empty'),
    (['generate', '--prompt', 'x', '--max-new-tokens', '0'], '`--max-new-tokens` must be >= 1'),
    (['generate', '--prompt', 'x', '--bits', '3'], 'invalid choice'),
    (['generate'], '--prompt'),
    (['eval', '--methods', 'bogus-3'], 'bogus-3'),
    (['eval', '--methods', 'fp16'], "now named 'fp'"),
    (['eval', '--methods', ''], '`--methods` must name at least one item'),
    (['eval', '--data', 'nosuchcorpus'], '`--data` `nosuchcorpus` is unknown'),
    (['eval', '--windows', '0'], '`--windows` must be >= 1'),
    (['eval', '--length', '-5'], '`--length` must be >= 2'),
    (['paper', '--items', 'nosuchitem'], '`--items` `nosuchitem` is not a paper item'),
    (['eval', '--max-memory', 'cpu=1GiB'], '`--max-memory` only applies with `--device-map`'),
    (['generate', '--prompt', 'x', '--offload-folder', '/tmp/x'], '`--offload-folder` only applies with `--device-map`'),
    (['eval', '--device-map', 'auto', '--max-memory', 'cpu=lots'], '`--max-memory` entries must be device=size'),
    (['eval', '--device-map', 'everywhere'], 'invalid choice'),
    (['nosuchcommand'], 'invalid choice'),
]

def run(args, env=None, timeout=300):
    e = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', **(env or {})}
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=e, timeout=timeout)

pytestmark = pytest.mark.skipif(EXE is None, reason='the `nsnquant` console script is not installed')

def test_usage_errors():
    "Every case of USAGE: status 2, one line naming the argument, no traceback (run two at a time: each is a fresh interpreter)."
    from concurrent.futures import ThreadPoolExecutor
    cases = [(a, p) for a, p in USAGE if not ('--device' in a and __import__('torch').cuda.is_available())]
    with ThreadPoolExecutor(2) as ex: results = list(ex.map(lambda c: run(c[0]), cases))
    bad = []
    for (args, phrase), r in zip(cases, results):
        lines = r.stderr.strip().splitlines()
        if r.returncode != 2 or len(lines) != 1 or 'Traceback' in r.stderr or phrase not in lines[0]:
            bad.append((args, r.returncode, r.stderr[-500:]))
    assert not bad, bad

def test_runtime_errors():
    "An offline hub id, an unwritable cache directory and an offline corpus: status 1, one line, no traceback."
    cases = [(['generate', '--prompt', 'x', '--model', 'nosuchorg/nosuchmodel'], {}, 'nosuchorg/nosuchmodel'),
             (['generate', '--prompt', 'x'], {'NSNQUANT_CACHE': '/proc/nsnquant-cache'}, 'NSNQUANT_CACHE'),
             (['eval', '--methods', 'fp', '--data', 'wikitext2', '--windows', '1', '--length', '64', '--no-progress'], {},
              'fp on wikitext2 failed')]
    for args, env, phrase in cases:
        r = run(args, env)
        assert r.returncode == 1, (args, r.returncode, r.stderr[-2000:])
        assert 'Traceback' not in r.stderr, r.stderr[-2000:]
        assert phrase in r.stderr, (args, r.stderr[-2000:])

def test_verbose_shows_the_traceback():
    r = run(['--verbose', 'generate', '--prompt', 'x', '--model', 'nosuchorg/nosuchmodel'])
    assert r.returncode == 1 and 'Traceback' in r.stderr

def test_unsupported_model_refused_before_loading(tmp_path):
    "A model the cache cannot serve is refused from its config alone (no weights here): one line naming the model type, status 1."
    from transformers import GPT2Config, DeepseekV3Config
    for name, cfg, why in (('gpt2', GPT2Config(n_layer=2, n_embd=64, n_head=2), 'no rotary embedding'),
                           ('dsv3', DeepseekV3Config(num_hidden_layers=2), 'multi-head latent attention')):
        cfg.save_pretrained(tmp_path / name)
        for cmd in (['generate', '--prompt', 'x'], ['eval', '--methods', 'nsn-2', '--windows', '1']):
            r = run([*cmd, '--model', str(tmp_path / name)])
            assert r.returncode == 1 and why in r.stderr and len(r.stderr.strip().splitlines()) == 1, (cmd, r.stderr[-500:])
