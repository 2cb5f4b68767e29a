import os, sys, shutil
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long-running (run with --runslow)')
    config.addinivalue_line('markers', 'cuda: needs a CUDA GPU')

def pytest_addoption(parser):
    parser.addoption('--runslow', action='store_true', default=False, help='run tests marked slow')

def pytest_collection_modifyitems(config, items):
    import importlib.util
    has_cuda = False
    if importlib.util.find_spec('torch'):
        import torch; has_cuda = torch.cuda.is_available()
    for it in items:
        if 'slow' in it.keywords and not config.getoption('--runslow'):
            it.add_marker(pytest.mark.skip(reason='slow: pass --runslow'))
        if 'cuda' in it.keywords and not has_cuda:
            it.add_marker(pytest.mark.skip(reason='needs a CUDA GPU'))

@pytest.fixture(scope='session')
def root(): return ROOT

@pytest.fixture(scope='session')
def out_dir():
    d = ROOT/'tests'/'_out'; d.mkdir(parents=True, exist_ok=True); return d
