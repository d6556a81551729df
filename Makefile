# The README's two commands: `make quickstart` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.domaingen-installed
# Where datasets live (Detectron2's convention); the synthetic data is generated below it.
export DETECTRON2_DATASETS ?= datasets
QUICK := output/quickstart

.PHONY: setup quickstart evidence test test-fast lint bench clean

setup: $(STAMP)

# torch/torchvision are pinned to the builds on this machine's disk; detectron2 comes from
# tools/install_detectron2.py (skipped when one is already importable); the rest from setup.py,
# with what makes the miniature world's bytes pinned by constraints.txt.
$(STAMP): setup.py Makefile tools/install_detectron2.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) tools/install_detectron2.py
	$(PY) -m pip install -q --no-build-isolation -c constraints.txt -e ".[test]"
	touch $@

# Baseline CLIP detector, then CLIP the Gap (optimization step + training), both cut from the
# semantic stand-in RN CLIP (trained once on the pretraining world, then cached) and evaluated on
# the five synthetic domains; each prints its table, then both mAPs side by side with the target
# mean (output/quickstart/comparison.md and .png).
quickstart: setup
	$(PY) -m domaingen.miniature.synthetic --kind diverse_weather
	$(PY) -m domaingen.miniature.standin --model domaingen-semantic-RN
	$(PY) tools/train_net.py --config-file configs/evidence/diverse_weather_clip_rcnn.yaml \
		OUTPUT_DIR $(QUICK)/diverse_weather_clip_rcnn
	$(PY) tools/train_net.py --config-file configs/evidence/diverse_weather_clip_gap.yaml \
		OUTPUT_DIR $(QUICK)/diverse_weather_clip_gap
	@echo; $(PY) tools/compare_results.py baseline=$(QUICK)/diverse_weather_clip_rcnn \
		clip_gap=$(QUICK)/diverse_weather_clip_gap --output $(QUICK)/comparison.md

# The miniature world's pre-registered study (docs/miniature_world.md); ARGS=--quick: one replicate.
evidence: setup
	$(PY) tools/evidence.py $(ARGS)

test: setup
	$(PY) -m pytest -q tests

# The edit loop: everything but the tests marked slow or distributed (pytest.ini).
test-fast: setup
	$(PY) -m pytest -q -m "not slow and not distributed" tests

lint: setup
	$(PY) -m ruff check .

# CPU benchmark of the cases docs/performance.md reports (about an hour on 2 cores);
# `$(PY) tools/benchmark.py --help` for suites, models, cases and --device cuda.
bench: setup
	$(PY) tools/benchmark.py --suite detection --model RN101 --iters 3 --cases 'optimization_step*' \
		--json output/bench/optimization_step_RN101.json
	$(PY) tools/benchmark.py --suite detection --model RN101 --iters 2 \
		--cases 'detector_train_iter[aug]' --cases 'detector_train_iter[parts]' \
		--json output/bench/detector_RN101.json
	$(PY) tools/benchmark.py --suite detection --model RN101 --iters 2 \
		--cases 'detector_train_iter[authors]' --json output/bench/detector_authors_RN101.json
	$(PY) tools/benchmark.py --suite classification --model ViT-B-16 --iters 3 \
		--cases 'text_encoding[*' --cases 'spg_inference[*' --cases 'cocoop_inference[7,*' \
		--cases 'cocoop_inference[65,*' --cases 'adclip_inference[7,*' \
		--cases 'adclip_inference[65,*' --cases 'adclip_train_step[7,*' \
		--cases 'coop_train_step[7,*' --cases 'spg_train_step' \
		--json output/bench/classification_ViT-B-16.json
	$(PY) tools/benchmark.py --suite classification --model ViT-B-16 --iters 3 --batch 1 \
		--cases 'adclip_train_step[65,*' --json output/bench/adclip_65_ViT-B-16.json
	$(PY) tools/benchmark.py --suite detection --model RN101 --cases 'train_loop*' --iters 4 \
		--json output/bench/train_loop_RN101.json
	$(PY) tools/benchmark.py --suite all --model tiny --cases 'train_loop*' --iters 20 \
		--warmup 3 --json output/bench/train_loop_tiny.json

clean:
	rm -rf output .pytest_cache
