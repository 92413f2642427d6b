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

# The calibration plants into the default's base and shares nothing else with it, so once the base
# is built the two runs go side by side (their jobs are one-thread after the base; docs/design.md 11).
# If the default run fails or is interrupted, the calibration run and its jobs are stopped too.
CAL_LOG := logs/calibration/snakemake.log

demo: $(STAMP)
	$(BIN)/snakemake base --cores all
	@mkdir -p $(dir $(CAL_LOG))
	@echo "make demo: the calibration runs beside the default run; its progress: $(CAL_LOG)"
	@$(BIN)/snakemake calibration --cores all --configfile configs/calibration.yaml > $(CAL_LOG) 2>&1 & cal=$$!; \
	stop() { pkill -TERM -P $$cal; kill -TERM $$cal; } 2>/dev/null; \
	trap 'stop; exit 130' INT TERM; \
	$(BIN)/snakemake --cores all; main=$$?; \
	[ $$main -eq 0 ] || stop; \
	wait $$cal; calrc=$$?; \
	if [ $$main -eq 0 ] && [ $$calrc -ne 0 ]; then \
	  tail -n 25 $(CAL_LOG); echo "make demo: the calibration run failed (exit $$calrc): $(CAL_LOG)"; fi; \
	[ $$main -eq 0 ] && [ $$calrc -eq 0 ]
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
