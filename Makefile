# Two commands a new user needs:  `make demo` (the main job) and `make test`.
# Both create the virtual environment at .venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/pip install --disable-pip-version-check -c constraints.txt
STAMP   := $(VENV)/.installed
HVD_STAMP := $(VENV)/.horovod
# Horovod's build switches (tools/gpu_check.py reads this line and adds NCCL for GPUs).
HVD_FLAGS := HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1
# The second environment, for the checks against timm and the authors' PyTorch code (GluonCV
# refuses to import beside torch >= 2, so torch never enters .venv).
TORCH_PY    ?= python3.11
TORCH_VENV  := .venv-torch
TORCH_STAMP := $(TORCH_VENV)/.installed

.PHONY: setup demo test test-all benchmark clean-venv gpu-check

REF     := $(VENV)/reference/resnest/gluon/__init__.py

setup: $(STAMP) $(HVD_STAMP) $(REF) $(TORCH_STAMP)

$(STAMP): setup.py constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade "pip<25" wheel "setuptools<70"
	$(PIP) -q -e ".[cpu,train,test,deploy]"
	touch $@

# Horovod is compiled against the installed MXNet (about 4 minutes on 2 cores); Gloo, no MPI.
# Rebuilt only when the pins change (order-only on the venv), not on every setup.py edit.
$(HVD_STAMP): constraints.txt | $(STAMP)
	$(PIP) -q cmake packaging psutil pyyaml cloudpickle
	$(HVD_FLAGS) $(PIP) --no-build-isolation --no-cache-dir horovod==0.28.1
	$(BIN)/horovodrun --check-build | grep -q "\[X\] MXNet"
	touch $@

# The authors' published Gluon code (resnest 0.0.5), unpacked, not installed: the equivalence
# tests and benchmark.py compare against it side by side (see resnest/gluon/reference.py).
$(REF): | $(STAMP)
	$(BIN)/pip download -q --no-deps resnest==0.0.5 -d $(VENV)/reference
	cd $(VENV)/reference && ../bin/python -m zipfile -e resnest-0.0.5-py3-none-any.whl .
	test -f $@

# torch 2.13.0 is the CPU build lying on this kind of machine (pip's find-links; a newer or
# unpinned torch would pull a CUDA build of several GB). timm imports torchvision, whose
# package-index wheel brings CUDA operators that do not load beside the CPU torch: it is
# installed without dependencies and tools/torch_side.py declares the two operator schemas its
# import needs. The authors' torch code comes from the unpacked wheel ($(REF)).
$(TORCH_STAMP): constraints-torch.txt tools/torch_side.py | $(REF)
	$(TORCH_PY) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/pip install --disable-pip-version-check -q -c constraints-torch.txt \
		torch numpy safetensors pillow pyyaml
	$(TORCH_VENV)/bin/pip install --disable-pip-version-check -q --no-deps -c constraints-torch.txt \
		timm torchvision
	$(TORCH_VENV)/bin/python tools/torch_side.py --check
	touch $@

demo: setup
	$(BIN)/python scripts/demo.py

# The lint step first (ruff, configured in pyproject.toml), then the suite with its slowest
# tests listed.
test: setup
	$(BIN)/ruff check --quiet .
	RESNEST_REQUIRE_REFERENCE=1 $(BIN)/python -m pytest -q -m "not slow" --durations=15 tests

test-all: setup
	RESNEST_REQUIRE_REFERENCE=1 $(BIN)/python -m pytest -q tests

# On a machine with an NVIDIA GPU: installs the matching mxnet-cu1xx into .venv-gpu and checks
# the GPU path in minutes (tools/gpu_check.py); `tools/gpu_check.sh --dry-run` on a CPU.
gpu-check:
	tools/gpu_check.sh

clean-venv:
	rm -rf $(VENV) $(TORCH_VENV)
