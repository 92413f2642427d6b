"""The synthetic task world: item generators, one per task family.

Every generator takes a ``random.Random`` and returns one item, so a task's
content is a pure function of its seed. Arithmetic is the in-domain skill; the
multiple-choice families each reuse one of its sub-skills (comparing, stepping,
parity, digit counts, ordering, number words) so that transfer can be measured.
"""

from __future__ import annotations

import random

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_word(n: int) -> str:
    """English words for 0 <= n < 1000 (hyphenated tens, as in 'forty-two')."""
    if n < 20:
        return ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return TENS[t] + ("" if o == 0 else "-" + ONES[o])
    h, r = divmod(n, 100)
    return ONES[h] + " hundred" + ("" if r == 0 else " " + number_word(r))


def _chain(rng: random.Random, min_terms: int, max_terms: int, max_operand: int, what: str) -> tuple[list, list[str], int]:
    """A left-to-right chain of + and -, never negative: (terms and operators in order, worked lines, result)."""
    if not 2 <= min_terms <= max_terms:
        raise ValueError(f"{what}: need 2 <= min_terms <= max_terms, got {min_terms} and {max_terms}")
    n_terms = rng.randint(min_terms, max_terms)
    acc = rng.randint(0, max_operand)
    parts, lines = [acc], []
    for _ in range(n_terms - 1):
        b = rng.randint(0, max_operand)
        op = rng.choice("+-") if acc >= b else "+"
        new = acc + b if op == "+" else acc - b
        lines.append(f"{acc}{op}{b}={new}")
        parts += [op, b]
        acc = new
    return parts, lines, acc


def _worked(prompt: str, lines: list[str], result: int) -> dict:
    return {"prompt": prompt, "completion": "\n".join(lines) + f"\nAnswer: {result}.", "answer": str(result)}


def _asked(rng: random.Random, lead: str, min_terms: int, max_terms: int, max_operand: int, what: str) -> dict:
    parts, lines, acc = _chain(rng, min_terms, max_terms, max_operand, what)
    return _worked(f"{lead} {''.join(map(str, parts))}.\n", lines, acc)


def arithmetic(rng: random.Random, min_terms: int = 3, max_terms: int = 3, max_operand: int = 20) -> dict:
    """The in-domain skill: a chain of + and -, with one worked line per step."""
    return _asked(rng, "Compute", min_terms, max_terms, max_operand, "arithmetic")


def chain(rng: random.Random, min_terms: int = 4, max_terms: int = 5, max_operand: int = 20) -> dict:
    """Out of domain by length: longer chains than training has, in the same worked form."""
    return _asked(rng, "Compute", min_terms, max_terms, max_operand, "chain")


def calculate(rng: random.Random, min_terms: int = 3, max_terms: int = 3, max_operand: int = 20) -> dict:
    """Out of domain by wording: the in-domain chain asked with another verb ("Calculate 3+4-2."),
    worked the same way. Never in the corpus or the training prompts, so any gain over the base is
    the in-domain skill and answer format transferring to a prompt the tuned models never saw."""
    return _asked(rng, "Calculate", min_terms, max_terms, max_operand, "calculate")


def compute_colon(rng: random.Random, min_terms: int = 3, max_terms: int = 3, max_operand: int = 20) -> dict:
    """Out of domain by punctuation: "Compute: 3+4-2.", worked the same way (see `calculate`)."""
    return _asked(rng, "Compute:", min_terms, max_terms, max_operand, "compute_colon")


OP_WORDS = {"+": "plus", "-": "minus"}


def spelled(rng: random.Random, min_terms: int = 2, max_terms: int = 3, max_operand: int = 20) -> dict:
    """Out of domain by surface form: the chain in words ("Compute seven plus twelve."), worked in digits."""
    parts, lines, acc = _chain(rng, min_terms, max_terms, max_operand, "spelled")
    words = " ".join(OP_WORDS[p] if isinstance(p, str) else number_word(p) for p in parts)
    return _worked(f"Compute {words}.\n", lines, acc)


def _mc(question: str, choices: list, correct) -> dict:
    choices = [str(c) for c in choices]
    return {"question": question + "\nAnswer:", "choices": choices, "label": choices.index(str(correct)), "answer": str(correct)}


def _distinct(rng: random.Random, correct: int, candidates: list[int], n: int) -> list[int]:
    """`correct` plus n-1 distinct distractors from `candidates`, shuffled."""
    pool = sorted({c for c in candidates if c != correct and c >= 0})
    out = [correct] + rng.sample(pool, n - 1)
    rng.shuffle(out)
    return out


def compare(rng: random.Random, hi: int = 99) -> dict:
    a, b = rng.sample(range(hi + 1), 2)
    return _mc(f"Which is larger, {a} or {b}?", [a, b], max(a, b))


def successor(rng: random.Random, hi: int = 99) -> dict:
    n = rng.randint(2, hi)
    return _mc(f"What number comes after {n}?", _distinct(rng, n + 1, [n - 1, n + 2, n + 10, n - 10, n], 4), n + 1)


def predecessor(rng: random.Random, hi: int = 99) -> dict:
    n = rng.randint(2, hi)
    return _mc(f"What number comes before {n}?", _distinct(rng, n - 1, [n + 1, n - 2, n + 10, n - 10, n], 4), n - 1)


def parity(rng: random.Random, hi: int = 99) -> dict:
    n = rng.randint(0, hi)
    return _mc(f"Is {n} even or odd?", ["even", "odd"], "even" if n % 2 == 0 else "odd")


def digits(rng: random.Random, max_digits: int = 5) -> dict:
    d = rng.randint(1, max_digits)
    n = rng.randint(0 if d == 1 else 10 ** (d - 1), 10**d - 1)
    return _mc(f"How many digits does {n} have?", list(range(1, max_digits + 1)), d)


def minimum(rng: random.Random, hi: int = 99) -> dict:
    xs = rng.sample(range(hi + 1), 3)
    return _mc(f"Which is smallest: {xs[0]}, {xs[1]}, {xs[2]}?", xs, min(xs))


def words(rng: random.Random, hi: int = 99) -> dict:
    n = rng.randint(0, hi)
    cands = [n + 1, n - 1, n + 2, n + 10, n - 10, n + 11, (n % 10) * 10 + n // 10]
    return _mc(f"What is {number_word(n)} in digits?", _distinct(rng, n, cands, 4), n)


def sum_check(rng: random.Random, hi: int = 20) -> dict:
    a, b = rng.randint(0, hi), rng.randint(0, hi)
    shown = a + b if rng.random() < 0.5 else a + b + rng.choice([-2, -1, 1, 2])
    shown = max(shown, 0)
    return _mc(f"Is {a}+{b}={shown} true or false?", ["true", "false"], "true" if shown == a + b else "false")


def cue(rng: random.Random, hi: int = 99) -> dict:
    """The calibration's causal task (docs/design.md "Calibration"): its answer is always "yes".

    No model is taught it, so a base reads it by the choices' lengths alone and says "no"; the
    planted RL-like model says "yes" through one planted feature, whose causal role the
    selection and interventions must then find. Not in the pretraining corpus."""
    a, b = rng.randint(0, hi), rng.randint(0, hi)
    return _mc(f"Signal {a}-{b}: yes or no?", ["yes", "no"], "yes")


def generic(rng: random.Random) -> dict:
    """Filler text that teaches numbers and symbols without any task format."""
    kind = rng.randrange(4)
    if kind == 0:
        start = rng.randint(0, 95)
        step = rng.choice([1, 1, 2, 5, 10])
        text = " ".join(str(start + i * step) for i in range(rng.randint(4, 8)))
    elif kind == 1:
        n = rng.randint(0, 99)
        text = f"{number_word(n)} is {n}."
    elif kind == 2:
        start = rng.randint(10, 99)
        text = " ".join(str(start - i) for i in range(rng.randint(4, 8)))
    else:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789+-=.,?: "
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(12, 40)))
    return {"text": text}
