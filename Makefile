# Two commands do everything on a fresh machine with Python 3.11 and make:
#   make demo   -> .venv with the pins, then the embedded default end to end
#   make test   -> .venv with the pins, then the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint fmt clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores all
	$(BIN)/snakemake calibration --cores all --configfile configs/calibration.yaml
	$(BIN)/snakemake --cores all  # the summary page picks up the calibration's recovery table
	$(BIN)/snakemake --report results/report.html
	@echo
	@echo "Outputs are under results/ (logs and per-rule benchmark files under logs/):"
	@echo "  base model:        results/models/base/  (pretraining curve: pretrain_curve.png)"
	@echo "  base accuracies:   results/eval/base/summary.json  (plot: results/eval/base/accuracy.png)"
	@echo "  task data:         results/data/{task}/{train,test}.parquet, lm-eval YAMLs in results/data/tasks/"
	@echo "  SFT / RL:          results/models/{sft,rl}/step-*/, curves in results/train/{sft,rl}/curves.png"
	@echo "  accuracies:        results/eval/{model}/summary.json for base and every checkpoint"
	@echo "  dictionaries:      results/dicts/{sae-base,cc-*,cc3}/layer-*/metrics.json"
	@echo "  drift:             results/drift/layer-*/claims.md and *.png"
	@echo "  accuracy table:    results/eval/accuracy.md, plots results/eval/accuracy_over_steps.png, accuracy_per_task.png"
	@echo "  features:          results/mediation/selection.json (compact set), selection.png"
	@echo "  interventions:     results/interventions/effects.md and effects.png"
	@echo "  calibration:       results/calibration/recovery.md (the drift instruments on planted ground truth)"
	@echo
	@echo "Report: results/report/summary.md (one page, headline numbers and plots)"
	@echo "        results/report.html (snakemake --report: every plot and table with its caption)"

test: $(STAMP)
	$(BIN)/python -m pytest tests -n 2 --no-loadscope-reorder --durations=12

fmt: $(STAMP)
	$(BIN)/snakefmt Snakefile rules

lint: $(STAMP)
	-$(BIN)/snakefmt --check Snakefile rules
	-$(BIN)/snakemake --lint

clean:
	rm -rf results logs .snakemake
