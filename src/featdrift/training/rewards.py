"""GRPO rewards: correctness of the parsed final answer; a format reward, off by default."""

from __future__ import annotations

import re

from ..settings import RlSettings
from ..tasks.lmeval_yaml import FINAL_ANSWER_REGEX


def parse_answer(text: str, regex: str = FINAL_ANSWER_REGEX) -> str | None:
    """The first match's first group, as lm-eval's regex + take_first filter reads it."""
    m = re.search(regex, text)
    if not m:
        return None
    return (m.group(1) if m.groups() else m.group(0)).strip()


def _text(completion) -> str:
    # Conversational completions are lists of messages; ours are plain strings.
    return completion if isinstance(completion, str) else completion[-1]["content"]


def reference(answer, regex: str = FINAL_ANSWER_REGEX) -> str:
    """The row's answer; parsed with the same regex when it is a worked solution (GSM8K: '... #### 72')."""
    parsed = parse_answer(str(answer), regex)
    return parsed if parsed is not None else str(answer).strip()


def correctness_reward(regex: str = FINAL_ANSWER_REGEX):
    """1.0 when the completion's final answer equals the row's reference answer, else 0.0."""
    def correctness(completions, answer, **_):
        return [float(parse_answer(_text(c), regex) == reference(a, regex)) for c, a in zip(completions, answer)]
    return correctness


def format_reward(regex: str = FINAL_ANSWER_REGEX):
    """1.0 when a final answer can be parsed at all, whatever its value."""
    def answer_format(completions, **_):
        return [float(parse_answer(_text(c), regex) is not None) for c in completions]
    return answer_format


def reward_functions(rl_cfg: RlSettings | dict, regex: str | None) -> tuple[list, list[float]]:
    rl_cfg = RlSettings.of(rl_cfg)
    regex = regex or FINAL_ANSWER_REGEX
    funcs, weights = [correctness_reward(regex)], [1.0]
    if rl_cfg.format_reward:
        funcs.append(format_reward(regex))
        weights.append(float(rl_cfg.format_reward))
    return funcs, weights
