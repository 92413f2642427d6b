"""Post-training from the base model: SFT and RL (GRPO) on identical prompts, with checkpoint series.

`schedule` fixes the prompt order and the checkpoint steps, `rewards` scores GRPO
completions, `checkpoints` saves, publishes and resumes, `sft` and `grpo` build the
trl trainers, `run` drives one run end to end, `curves` writes the training curves.
"""
