"""The base model stage: import an existing causal LM, or pretrain the tiny one."""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_dir, read_parquet, write_parquet
from ..plots import line_plot
from ..settings import BaseSettings
from .load import load_model
from .pretrain import pretrain


def build_base(base_cfg: BaseSettings | dict, corpus_path: str | None, seed: int, threads: int,
               out_dir: str | Path) -> dict:
    """Write `out_dir` (safetensors + tokenizer); return a summary for the lineage record."""
    base_cfg = BaseSettings.of(base_cfg)  # before atomic_dir: a bad section leaves no temporary folder
    with atomic_dir(out_dir) as tmp:
        if base_cfg.pretrained:
            model, tok = load_model(base_cfg.pretrained, trust_remote_code=base_cfg.trust_remote_code)
            summary = {"source": base_cfg.pretrained}
        else:
            pre = base_cfg.pretrain
            model, tok, curve = pretrain(read_parquet(corpus_path), pre.model, pre.train, seed, threads,
                                         pre.tokenizer, pre.bpe_vocab)
            write_parquet(tmp / "pretrain_curve.parquet", curve)
            line_plot(curve, "step", ["loss", "lr"], tmp / "pretrain_curve.png", title="Base pretraining", ylabel="")
            summary = {"source": "pretrain", "final_loss": float(curve["loss"].tail(20).mean())}
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        summary["parameters"] = sum(p.numel() for p in model.parameters())
    return summary
