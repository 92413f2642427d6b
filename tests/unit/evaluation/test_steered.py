"""Issue 6: the featdrift-steered lm-eval model and its delta-form feature edit."""

from __future__ import annotations

import pytest
import torch

from featdrift.models.hooks import decoder_layers
from featdrift.dictionaries import Dictionary
from featdrift.evaluation.harness import make_hflm, run_lm_eval
from featdrift.evaluation.steered import MODEL_NAME, FeatureEdit, SteeredHFLM, edit_hook
from featdrift.models.load import load_model

LAYER = 1  # configs/test.yaml: 2 blocks, d_model 32, activations.layers [1]
TASKS = ["fd_arithmetic", "fd_compare", "fd_successor"]


def random_dictionary(d: int, n: int = 48, arch: str = "batchtopk", models=("base", "rl")) -> Dictionary:
    g = torch.Generator().manual_seed(0)
    D = Dictionary(len(models), d, n, arch, k=4, scales=[0.7] * len(models), threshold=0.1,
                   thresholds=[0.05] * len(models), cfg={"name": "test-dict", "layer": LAYER, "models": list(models)})
    with torch.no_grad():
        D.W_enc.copy_(torch.randn(len(models), d, n, generator=g) / d**0.5)
        D.b_enc.copy_(torch.randn(n, generator=g) * 0.1)
        D.W_dec.copy_(torch.randn(len(models), n, d, generator=g) / d**0.5)
        D.b_dec.copy_(torch.randn(len(models), d, generator=g))
        D.b_enc[n - 1] = -1e4  # feature n-1 never fires
    return D


@pytest.fixture(scope="module")
def base(tiny_run):
    model, tok = load_model(tiny_run / "results/models/base")
    return model, tok, tiny_run


def ids_of(tok, texts):
    rows = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    n = min(map(len, rows))
    return torch.tensor([r[:n] for r in rows])


TEXTS = ["Compute 12+7-5.\n", "Which is larger: 41 or 14? Answer:", "The successor of 19 is 20"]


def logits(model, ids, edit=None):
    with torch.no_grad():
        if edit is None:
            return model(ids).logits
        with edit_hook(model, LAYER, edit):
            return model(ids).logits


@pytest.mark.parametrize("arch", ["batchtopk", "relu", "topk"])
def test_c_equal_one_leaves_logits_bit_identical(base, arch):
    model, tok, _ = base
    D = random_dictionary(model.config.hidden_size, arch=arch)
    ids = ids_of(tok, TEXTS)
    edit = FeatureEdit(D, "rl", list(range(40)), c=1.0)
    assert torch.equal(logits(model, ids, edit), logits(model, ids))


def test_disabling_a_feature_that_never_fires_changes_nothing(base):
    model, tok, _ = base
    D = random_dictionary(model.config.hidden_size)
    ids = ids_of(tok, TEXTS)
    dead = D.n - 1
    edit = FeatureEdit(D, "rl", [dead], c=0.0)
    assert torch.equal(logits(model, ids, edit), logits(model, ids))
    # A live feature does change them: the edit is not a no-op in general.
    live = FeatureEdit(D, "rl", list(range(20)), c=0.0)
    assert not torch.equal(logits(model, ids, live), logits(model, ids))


def block_outputs(model, ids, edit) -> list[torch.Tensor]:
    """Block LAYER's output without and with `edit` (the second hook, registered after the edit, sees it)."""
    block = decoder_layers(model)[LAYER]
    seen = []

    def capture(_m, _i, out):
        seen.append((out[0] if isinstance(out, tuple) else out).detach().clone())

    with torch.no_grad():
        h = block.register_forward_hook(capture)
        model(ids)
        with edit_hook(model, LAYER, edit):
            h2 = block.register_forward_hook(capture)
            model(ids)
            h2.remove()
        h.remove()
    return seen


@pytest.mark.parametrize("arch", ["batchtopk", "relu", "topk"])
def test_disabling_a_set_subtracts_exactly_its_decoder_contributions(base, arch):
    model, tok, _ = base
    D = random_dictionary(model.config.hidden_size, arch=arch)
    S = [0, 3, 5, 8, 13]
    seen = block_outputs(model, ids_of(tok, TEXTS), FeatureEdit(D, "rl", S, c=0.0))
    clean, edited = seen[0].double(), seen[-1].double()
    # Hand computation in float64, one feature at a time: f_k = sigma(s x . W_enc[:, k] + b_k), x' = x - sum f_k W_dec,k / s;
    # for topk, f_k is pre_k where k is among the token's 4 largest pre-activations (of all 48), else 0.
    m, s = 1, float(D.scales[1])
    expected = clean.clone()
    with torch.no_grad():  # which 4 win is decided in float32, as in the hook (float64 could reorder near-ties)
        pre32 = (seen[0] * D.scales[m]) @ D.W_enc[m] + D.b_enc
        top = torch.zeros_like(pre32, dtype=torch.bool).scatter(-1, pre32.topk(4, dim=-1).indices, True)
    for k in S:
        pre = (clean * s) @ D.W_enc[m][:, k].detach().double() + float(D.b_enc[k])
        f = {"relu": torch.relu(pre), "batchtopk": pre * (pre > D.thresholds[m]),
             "topk": torch.relu(pre) * top[..., k]}[arch]
        expected -= f[..., None] * (D.W_dec[m][k].detach().double() / s)
    assert (expected - clean).abs().max() > 1e-3  # the set fires: the check is not vacuous
    torch.testing.assert_close(edited, expected, rtol=0, atol=1e-5)


def test_steering_adds_c_times_the_magnitude_weighted_decoder_rows_at_every_position(base):
    # intervene.amplify: steer. The edit ignores the model's own readout: x' = x + c sum_k a_k W_dec,k / s,
    # the same vector at every position, so it adds features that the edited model never reads.
    model, tok, _ = base
    D = random_dictionary(model.config.hidden_size)
    S, a, c = [2, 7], [0.5, 2.0], 3.0
    seen = block_outputs(model, ids_of(tok, TEXTS), FeatureEdit(D, "rl", S, c=c, magnitudes=a))
    s = float(D.scales[1])
    vec = sum(c * ak * D.W_dec[1][k].detach().double() / s for k, ak in zip(S, a))
    torch.testing.assert_close(seen[-1].double() - seen[0].double(), vec.expand_as(seen[0]), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="2 magnitudes for 1 features"):
        FeatureEdit(D, "rl", [1], c=2.0, magnitudes=[1.0, 2.0])


def test_feature_id_out_of_range_and_width_mismatch_are_named(base):
    model, tok, _ = base
    D = random_dictionary(model.config.hidden_size)
    with pytest.raises(ValueError, match=r"test-dict: feature id 48 out of range \(the dictionary has 48 latents\)"):
        FeatureEdit(D, "rl", [1, 48], c=0.0, name="test-dict")
    wide = random_dictionary(model.config.hidden_size * 2)
    with pytest.raises(ValueError, match=r"^dictionary test-dict \(d_model 64\) does not fit model '.*models/base': "
                                         r"its activations at layer 1 have width 32$"):
        SteeredHFLM(model, dictionary=wide, dict_model="rl", features=[1], scale=0.0, tokenizer=tok)
    with pytest.raises(ValueError, match=r"model 'sft' is not in this dictionary"):
        FeatureEdit(D, "sft", [1], c=0.0)


def test_steered_unedited_scores_equal_plain_hflm_and_hook_is_removed(base, monkeypatch):
    model, tok, wd = base
    monkeypatch.chdir(wd)  # the task files name their Parquet splits relative to the workflow's directory
    D = random_dictionary(model.config.hidden_size)
    include = str(wd / "results/data/tasks")
    _, plain = run_lm_eval(make_hflm(model, tok, batch_size=16), TASKS, include, limit=8)
    steered = SteeredHFLM(model, dictionary=D, dict_model="rl", features=list(range(30)), scale=1.0, tokenizer=tok,
                          batch_size=16)
    _, same = run_lm_eval(steered, TASKS, include, limit=8)
    cols = ["task", "doc_id", "correct", "prediction", "chosen"]
    assert plain[cols].equals(same[cols])
    assert all(not b._forward_hooks for b in decoder_layers(model))
    # An edit that bites changes some generations or choices, and still leaves no hook behind.
    strong = SteeredHFLM(model, dictionary=D, dict_model="rl", features=list(range(40)), scale=8.0, tokenizer=tok,
                         batch_size=16)
    _, edited = run_lm_eval(strong, TASKS, include, limit=8)
    assert not plain[cols].equals(edited[cols])
    assert all(not b._forward_hooks for b in decoder_layers(model))


def test_registered_by_name_with_model_args(base, tmp_path):
    from lm_eval.api.registry import get_model

    model, _, wd = base
    D = random_dictionary(model.config.hidden_size)
    D.save(tmp_path / "dict")
    cls = get_model(MODEL_NAME)
    assert cls is SteeredHFLM
    lm = cls.create_from_arg_string(f"pretrained={wd / 'results/models/base'},dictionary={tmp_path / 'dict'},"
                                    "dict_model=rl,features=2|7|11,scale=0,batch_size=4")
    assert lm.edit.features == [2, 7, 11] and lm.edit.c == 0.0 and lm.edit_layer == LAYER
