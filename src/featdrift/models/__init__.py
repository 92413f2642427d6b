"""Models: the tiny tokenizers (char, BPE), the tiny Llama/Qwen families, pretraining, safe loading."""


def parse_model(name: str) -> tuple[str, int]:
    """`base` -> ("base", 0); `sft-40` -> ("sft", 40)."""
    if name == "base":
        return "base", 0
    run, _, step = name.rpartition("-")
    if not run or not step.isdigit():
        raise ValueError(f"model name {name!r} is neither 'base' nor '<run>-<step>'")
    return run, int(step)
