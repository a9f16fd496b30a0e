# `make demo` and `make test` are the README's two commands; each sets up .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED ?= ../shared
DATA ?= $(SHARED)/datasets/flower_photos
export KERAS_HOME ?= $(CURDIR)/.keras
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv test demo bench bench-train bench-resnet bench-predict weights clean

$(STAMP): requirements.txt requirements-dev.txt training/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# Seed the Keras cache with the offline ImageNet weights in ../shared when present.
weights:
	@mkdir -p $(KERAS_HOME)/models
	@if [ -d $(SHARED)/weights ]; then cp -n $(SHARED)/weights/*.h5 $(KERAS_HOME)/models/ 2>/dev/null || true; fi

test: $(STAMP) weights
	$(PY) -m pytest -n 2 -q

demo: $(STAMP) weights
	$(PY) -m training.demo --data $(DATA)

bench: bench-train bench-resnet bench-predict

bench-train: $(STAMP) weights
	$(PY) bench/train.py $(DATA) --preset mobilenet_v2

bench-resnet: $(STAMP) weights
	$(PY) bench/train.py $(DATA) --preset resnet_v1_50 --weights none --resnet-size-only

bench-predict: $(STAMP) weights
	$(PY) bench/predict.py --work build/bench-predict

clean:
	rm -rf $(VENV) .keras .pytest_cache build out
