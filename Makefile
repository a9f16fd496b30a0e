# `make demo` and `make test` are the README's two commands; each sets up .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED ?= ../shared
DATA ?= $(SHARED)/datasets/flower_photos
# bench-train runs our recipe once per seed: with 161 test photos, one photo is 0.62 point.
SEEDS ?= 1337,7,11
export KERAS_HOME ?= $(CURDIR)/.keras
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv lock test test-unit demo bench bench-classify bench-label-noise bench-train bench-resnet bench-predict bench-load bench-imaging bench-pipeline bench-budget bench-not-flowers bench-gpu-input bench-idle-watch bench-retrain weights clean synth check-infra typecheck typecheck-infra bootstrap deploy destroy pin-base-image

# Every venv installs pip from requirements-pip.txt first, then its lock, each with --require-hashes:
# a package whose file does not match its lock's hash, or any package the lock does not name, fails
# the install. --only-binary: nothing is built from source (a build's own tools would not be hash-checked).
PIP_LOCKED := -m pip install -q --require-hashes --only-binary :all:

$(STAMP): requirements-pip.txt requirements-dev.txt training/requirements-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_LOCKED) -r requirements-pip.txt
	$(PY) $(PIP_LOCKED) -r requirements-dev.txt
	$(PY) $(PIP_LOCKED) --no-deps -r training/requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# MediaPipe Tasks in its own venv, as an app developer has it (tests/e2e/test_mobile_contract.py).
MP_VENV := .venv-mediapipe
MP_STAMP := $(MP_VENV)/.installed

$(MP_STAMP): requirements-pip.txt tests/mobile/requirements.txt
	test -x $(MP_VENV)/bin/python || $(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/python $(PIP_LOCKED) -r requirements-pip.txt
	$(MP_VENV)/bin/python $(PIP_LOCKED) -r tests/mobile/requirements.txt
	touch $(MP_STAMP)

venv: $(STAMP)

# --- Locks: each *.in is what we ask for (top-level pins), each *.txt beside it the exact set with
# every file's hash, written by uv (its version pinned, hash-locked, in requirements-uv.txt).
# After editing a *.in: `make lock`, commit both. `make lock UPGRADE=1` moves every unpinned one to its newest.
LOCK_VENV := build/lock-venv
UV := $(LOCK_VENV)/bin/uv
UV_COMPILE = $(UV) pip compile --quiet --generate-hashes --only-binary :all: --python-version 3.11 \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade,)
# The Lambda functions: python3.11 on glibc 2.26, so only wheels up to manylinux2014 (glibc 2.17) or
# pure ones (uv names no platform between 2.17 and 2.28). The rest: Linux x86_64, glibc 2.28 or newer.
LAMBDA_PLATFORM := --python-platform x86_64-manylinux2014
LINUX_PLATFORM := --python-platform x86_64-manylinux_2_28

$(UV): requirements-pip.txt requirements-uv.txt
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python $(PIP_LOCKED) -r requirements-pip.txt
	$(LOCK_VENV)/bin/python $(PIP_LOCKED) -r requirements-uv.txt
	touch $(UV)

# The order matters: the training image's set agrees with the Lambda's, the dev venv with both.
lock: $(UV)
	$(UV_COMPILE) $(LINUX_PLATFORM) requirements-pip.in -o requirements-pip.txt
	$(UV_COMPILE) $(LINUX_PLATFORM) requirements-uv.in -o requirements-uv.txt
	$(UV_COMPILE) $(LAMBDA_PLATFORM) requirements.in -o requirements.txt
	$(UV_COMPILE) $(LINUX_PLATFORM) -c requirements.txt --no-emit-package tensorflow \
		training/requirements.in training/tensorflow.in -o training/requirements.txt
	$(UV_COMPILE) $(LINUX_PLATFORM) --no-deps training/requirements-nodeps.in -o training/requirements-nodeps.txt
	$(UV_COMPILE) $(LINUX_PLATFORM) -c requirements-pip.txt -c requirements.txt -c training/requirements.txt \
		requirements-dev.in -o requirements-dev.txt
	$(UV_COMPILE) $(LINUX_PLATFORM) infra/requirements-checks.in -o infra/requirements-checks.txt
	$(UV_COMPILE) $(LINUX_PLATFORM) tests/mobile/requirements.in -o tests/mobile/requirements.txt

# Seed the Keras cache with the offline ImageNet weights in ../shared when present.
weights:
	@mkdir -p $(KERAS_HOME)/models
	@if [ -d $(SHARED)/weights ]; then cp -n $(SHARED)/weights/*.h5 $(KERAS_HOME)/models/ 2>/dev/null || true; fi

# -rs: the reason of every skipped test is printed (under CI=true a core test fails instead of skipping).
test: $(STAMP) $(MP_STAMP) weights check-infra typecheck
	$(PY) -m pytest -n 2 -q -rs

# The unit level alone (tests/unit/: pure, no AWS fake, no SQLite, no process, no TensorFlow): seconds.
test-unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

# `flowers demo`: up + push the photos + wait for the first approved model + predictions (Ctrl-C stops).
demo: $(STAMP) weights
	$(PY) -m flowers_cli.main demo $(if $(filter command line environment,$(origin DATA)),--data $(DATA),)

bench: bench-train bench-resnet bench-predict bench-load bench-imaging bench-pipeline bench-budget bench-not-flowers bench-classify bench-label-noise

# The presets that train in minutes on a CPU, run by run within each seed (about 25 minutes a seed on 2 cores),
# then ensembles of the kept models; the keras.io baseline: `bench/train.py $(DATA) --preset mobilenet_v2`.
BENCH_PRESETS ?= efficientnet_lite1,mobilenet_v2,efficientnet_lite0
bench-train: $(STAMP) weights
	$(PY) bench/train.py $(DATA) --preset $(BENCH_PRESETS) --no-baseline --seeds $(SEEDS) --keep build/bench-train
	$(PY) bench/ensemble.py build/bench-train --seeds $(SEEDS)

bench-resnet: $(STAMP) weights
	$(PY) bench/train.py $(DATA) --preset resnet_v1_50 --weights none --resnet-size-only

bench-predict: $(STAMP) weights
	$(PY) bench/predict.py --work build/bench-predict

# `flowers up` under 16 concurrent clients and a costly-image client (about 5 minutes; same model as bench-predict).
bench-load: $(STAMP) weights
	$(PY) bench/load.py --work build/bench-predict

# Batch classification by upload in local mode: photos/s from HOME/bucket/classify/ to predictions/ (same model as bench-predict).
bench-classify: $(STAMP) weights
	$(PY) bench/classify.py --work build/bench-predict

# flowers up at rest: idle CPU and upload-to-delivery latency with 3,000 and 100,000 files, polling vs notifications (about 8 minutes).
bench-idle-watch: $(STAMP)
	$(PY) bench/idle_watch.py

# Incremental retraining: 95 % then +5 % warm-started with the feature cache, against a from-scratch run on 100 % (about 15 minutes per seed).
bench-retrain: $(STAMP) weights
	$(PY) bench/retrain.py $(DATA) --seeds $(SEEDS)

bench-imaging: $(STAMP)
	$(PY) bench/imaging.py

bench-pipeline: $(STAMP)
	$(PY) bench/pipeline.py

bench-budget: $(STAMP)
	$(PY) bench/time_budget.py

# "Not a flower": trains mobilenet_v2 with not_flowers as an `other` class (about 8 minutes); bench/not_flowers.py says how to measure a flowers-only model.
bench-not-flowers: $(STAMP) weights
	$(PY) bench/not_flowers.py build/bench-not-flowers --train --with-other --data $(DATA)

# Likely mislabelled photos: 5 % of the photos' labels flipped (seeded), one default training run (about 5 minutes).
bench-label-noise: $(STAMP) weights
	$(PY) bench/label_noise.py $(DATA)

# On a GPU machine, with JAX for CUDA installed in the venv (bench/gpu_input.py says why JAX).
bench-gpu-input: $(STAMP)
	KERAS_BACKEND=jax $(PY) bench/gpu_input.py $(DATA) --out bench/results/gpu_input.json

# --- AWS (infra/, see README "AWS") ---
INFRA_VENV := infra/.venv
INFRA_STAMP := $(INFRA_VENV)/.installed
TEMPLATE := infra/cdk.out/flowers.template.json
CDK_CLI := infra/node_modules/.installed
CDK := cd infra && CDK_DISABLE_CLI_TELEMETRY=true npx --no-install cdk --no-notices
CDK_ARGS ?=

# cfn-lint and checkov live in their own venv: checkov pins a boto3 the Lambdas' code does not use.
$(INFRA_STAMP): requirements-pip.txt infra/requirements-checks.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python $(PIP_LOCKED) -r requirements-pip.txt
	$(INFRA_VENV)/bin/python $(PIP_LOCKED) -r infra/requirements-checks.txt
	touch $(INFRA_STAMP)

$(CDK_CLI): infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund
	touch $(CDK_CLI)

synth: $(STAMP)
	cd infra && ../$(PY) app.py

check-infra: synth $(INFRA_STAMP)
	$(INFRA_VENV)/bin/cfn-lint $(TEMPLATE)
	$(INFRA_VENV)/bin/checkov -f $(TEMPLATE) --framework cloudformation --compact --quiet --skip-download

# Types: pyproject.toml's [tool.mypy] run, and infra/'s own (infra/mypy.ini): infra/app.py and
# the root app.py are both module "app", so one mypy run cannot hold both.
typecheck: typecheck-infra
	$(PY) -m mypy

typecheck-infra: $(STAMP)
	$(PY) -m mypy --config-file infra/mypy.ini

bootstrap: $(STAMP) $(CDK_CLI)
	$(CDK) bootstrap $(CDK_ARGS)

# training/Dockerfile's base by digest: resolves its FROM tag's digest with Docker (the tag's multi-platform
# index, as the registry serves it now) and writes TAG@sha256:... into the FROM line; commit the change.
# A no-op once the line carries a digest. deploy runs it first, so the image never builds on a bare tag.
DOCKERFILE := training/Dockerfile
pin-base-image:
	@if grep -Eq '^FROM [^ ]+@sha256:[0-9a-f]{64}$$' $(DOCKERFILE); then echo "$(DOCKERFILE): base pinned by digest"; else \
	  tag=$$(sed -n 's/^FROM \([^ @]*\)$$/\1/p' $(DOCKERFILE)); \
	  digest=$$(docker buildx imagetools inspect "$$tag" --format '{{json .Manifest.Digest}}' | tr -d '"'); \
	  echo "$$digest" | grep -Eq '^sha256:[0-9a-f]{64}$$' || { echo "could not resolve the digest of $$tag" >&2; exit 1; }; \
	  sed -i -e "s|^FROM $$tag$$|FROM $$tag@$$digest|" -e '/base-digest-pending:/,/no deploy builds on the tag alone/d' $(DOCKERFILE); \
	  echo "$(DOCKERFILE): FROM $$tag@$$digest (commit it)"; fi

deploy: $(STAMP) $(CDK_CLI) pin-base-image
	$(CDK) deploy --outputs-file cdk-outputs.json $(CDK_ARGS)

destroy: $(STAMP) $(CDK_CLI)
	$(CDK) destroy $(CDK_ARGS)

clean:
	rm -rf $(VENV) $(MP_VENV) .keras .pytest_cache build out $(INFRA_VENV) infra/cdk.out infra/node_modules
