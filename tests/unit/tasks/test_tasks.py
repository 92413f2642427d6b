import re

import pandas as pd
import pytest

from featdrift.tasks import world
from featdrift.tasks.build import build_task
from featdrift.tasks.corpus import build_corpus
from featdrift.tasks.lmeval_yaml import FINAL_ANSWER_REGEX
from featdrift.tasks.registry import IN_DOMAIN, TASKS, draw_unique

DATA_CFG = {"n_train": 50, "n_test": 30, "params": {}}


def _build(tmp_path, task, seed):
    out = {s: tmp_path / f"{task}-{seed}-{s}.parquet" for s in ("train", "test")}
    build_task(task, DATA_CFG, seed, out)
    return out


@pytest.mark.parametrize("task", list(TASKS))
def test_generators_are_byte_identical_for_a_seed(tmp_path, task):
    a, b = _build(tmp_path / "a", task, 7), _build(tmp_path / "b", task, 7)
    for split in ("train", "test"):
        assert a[split].read_bytes() == b[split].read_bytes()
    c = _build(tmp_path / "c", task, 8)
    assert a["test"].read_bytes() != c["test"].read_bytes()


WORDS = {world.number_word(n): str(n) for n in range(100)} | {"plus": "+", "minus": "-"}


@pytest.mark.parametrize("task", [t for t, s in TASKS.items() if s.kind == "generate"])
def test_worked_items_are_correct_and_parseable(tmp_path, task):
    out = _build(tmp_path, task, 0)
    test, train = pd.read_parquet(out["test"]), pd.read_parquet(out["train"])
    assert not set(test.prompt) & set(train.prompt), "train and test overlap"
    for row in test.itertuples():
        expr = re.sub(r"^(Compute:?|Calculate) ", "", row.prompt).removesuffix(".\n")
        if task == "spelled":
            expr = "".join(WORDS[w] for w in expr.split())
        n_terms = len(re.findall(r"\d+", expr))
        assert n_terms == len(row.completion.splitlines())  # one worked line per step, then the answer
        assert (n_terms == 3) if task in (IN_DOMAIN, "calculate", "compute_colon") else True
        assert (4 <= n_terms <= 5) if task == "chain" else True
        assert eval(expr) == int(row.answer)  # noqa: S307 - digits and +/- only
        assert re.search(FINAL_ANSWER_REGEX, row.completion).group(1) == row.answer
        for line in row.completion.splitlines()[:-1]:
            lhs, rhs = line.split("=")
            assert eval(lhs) == int(rhs)  # noqa: S307


@pytest.mark.parametrize("task", [t for t, s in TASKS.items() if s.kind == "choice"])
def test_multiple_choice_items_are_well_formed(tmp_path, task):
    df = pd.read_parquet(_build(tmp_path, task, 0)["test"])
    for row in df.itertuples():
        assert row.question.endswith("\nAnswer:")
        assert len(set(row.choices)) == len(row.choices) >= 2
        assert row.choices[row.label] == row.answer


def test_number_words():
    assert world.number_word(0) == "zero"
    assert world.number_word(42) == "forty-two"
    assert world.number_word(90) == "ninety"
    assert world.number_word(115) == "one hundred fifteen"


def test_corpus_mixes_every_family_and_excludes_task_prompts():
    excluded = {"Compute 1+2+3.\n"}
    cfg = {"n_docs": 900, "mix": {"in_domain": 1, "choice": 1, "generic": 1}, "in_domain_params": {"min_terms": 2, "max_terms": 2}}
    c = build_corpus(cfg, 0, excluded, {})
    assert len(c) == 900
    assert c.text.str.startswith("Compute").sum() == 300
    for t, spec in TASKS.items():
        if spec.kind == "choice" and spec.corpus:
            stem = spec.make(__import__("random").Random(0))["question"].split()[0]
            assert c.text.str.startswith(stem).any(), t
    assert not any(t.startswith("Compute 1+2+3.\n") for t in c.text)
    assert not c.text.str.startswith(("Calculate", "Compute:")).any()  # the reworded tasks stay out of domain
    assert c.equals(build_corpus(cfg, 0, excluded, {}))


def test_step_facts_are_correct_single_steps_and_seeded():
    from featdrift.tasks.corpus import step_facts
    from featdrift.tasks.registry import rng_for

    facts = step_facts(rng_for(0, "corpus", "facts"), 300, {"min_terms": 2, "max_terms": 3, "max_operand": 20})
    assert len(facts) == 300 and facts == step_facts(rng_for(0, "corpus", "facts"), 300,
                                                     {"min_terms": 2, "max_terms": 3, "max_operand": 20})
    for f in facts:
        m = re.fullmatch(r"(-?\d+)([+-])(\d+)=(-?\d+)", f)
        assert m, f
        a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
        assert c == (a + b if op == "+" else a - b)
    cfg = {"n_docs": 400, "mix": {"in_domain": 0.25, "facts": 0.45, "choice": 0.18, "generic": 0.12},
           "in_domain_params": {}, "direct_share": 0.7}
    docs = build_corpus(cfg, 0, set(), {})["text"].tolist()
    assert sum(bool(re.fullmatch(r"-?\d+[+-]\d+=-?\d+", d)) for d in docs) == 180


def test_the_cue_task_always_answers_yes_and_stays_out_of_the_corpus():
    items = draw_unique("cue", 0, 50)
    assert {it["answer"] for it in items} == {"yes"} and len({it["question"] for it in items}) == 50
    corpus = build_corpus({"n_docs": 400, "mix": {"in_domain": 0.2, "choice": 0.6, "generic": 0.2}}, 0, set(), {})
    assert not corpus["text"].str.contains("Signal").any()
