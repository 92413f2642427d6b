"""lm-eval task files for the synthetic world, loaded offline through `include_path`."""

from __future__ import annotations

from pathlib import Path

from .registry import TASKS

FINAL_ANSWER_REGEX = r"Answer: (-?\d+)"


def task_config(task: str, test_file: str | Path, max_gen_toks: int = 64, answer_regex: str | None = None) -> dict:
    """The lm-eval YAML (as a dict) of one synthetic task reading its Parquet test split."""
    spec = TASKS[task]
    cfg = {
        "task": spec.lm_eval_name,
        "dataset_path": "parquet",
        "dataset_kwargs": {"data_files": {"test": str(test_file)}},
        "test_split": "test",
    }
    if spec.kind == "generate":
        cfg.update(
            output_type="generate_until",
            doc_to_text="{{prompt}}",
            doc_to_target="{{answer}}",
            generation_kwargs={"until": ["."], "max_gen_toks": max_gen_toks, "do_sample": False},
            filter_list=[{"name": "final_answer", "filter": [
                {"function": "regex", "regex_pattern": answer_regex or FINAL_ANSWER_REGEX, "fallback": "[no answer]"},
                {"function": "take_first"},
            ]}],
            metric_list=[{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        )
    else:
        cfg.update(
            output_type="multiple_choice",
            doc_to_text="question",
            doc_to_choice="choices",
            doc_to_target="label",
            target_delimiter=" ",
            metric_list=[
                {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
            ],
        )
    cfg["metadata"] = {"version": 1.0}
    return cfg
