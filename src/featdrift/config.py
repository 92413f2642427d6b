"""Config validation: schema defaults filled in, then one-line errors naming the key path."""

from __future__ import annotations

from pathlib import Path

import yaml

from .tasks.registry import IN_DOMAIN, TASKS


class ConfigError(ValueError):
    """A config problem, with the key path first: `data.n_test: -1 is less than the minimum of 1`."""


def _with_defaults(cls):
    """A validator class that also writes schema defaults into missing keys."""
    import jsonschema  # here, not at module level: jobs import this module for ConfigError alone

    validate_props = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = sub["default"] if not isinstance(sub["default"], (dict, list)) else yaml.safe_load(yaml.safe_dump(sub["default"]))
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


def _path(err) -> str:
    parts = []
    for p in err.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else ("." if parts else "") + str(p))
    return "".join(parts) or "<config>"


def _message(err) -> str:
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return f"{_path(err)}: unknown key {', '.join(repr(e) for e in extra)}"
    return f"{_path(err)}: {err.message}"


def load_schema(path: str | Path) -> dict:
    """The schema; libyaml's parser when PyYAML has it (the same dict, ~10x faster: every
    `snakemake` call, no-op included, loads it)."""
    return yaml.load(Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def validate(config: dict, schema: dict, base_dir: str | Path = ".") -> dict:
    """Fill defaults into `config` in place, check it, and sort its keys (in place).

    Sorting matters: Snakemake compares params as written, so the same settings
    reached through differently ordered config files would otherwise rerun jobs.
    Raises ConfigError on the first problem.
    """
    import jsonschema

    Validator = _with_defaults(jsonschema.Draft202012Validator)
    errors = sorted(Validator(schema).iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise ConfigError(_message(jsonschema.exceptions.best_match(errors)))
    _check_semantics(config, Path(base_dir))
    ordered = _sorted(config)
    config.clear()
    config.update(ordered)
    return config


def _sorted(x):
    if isinstance(x, dict):
        return {k: _sorted(x[k]) for k in sorted(x)}
    if isinstance(x, list):
        return [_sorted(v) for v in x]
    return x


def is_local(path: str, base_dir: str | Path = ".") -> bool:
    """A local path rather than a hub id (`owner/name`): it exists, starts like a path or has other than one '/'."""
    return path.startswith((".", "/", "~")) or (Path(base_dir) / path).exists() or path.count("/") != 1


def _check_semantics(config: dict, base_dir: Path) -> None:
    data = config["data"]
    seen = {}
    for key in ("ood_tasks", "heldout_tasks"):
        for i, name in enumerate(data[key]):
            if name not in TASKS or name == IN_DOMAIN:
                known = ", ".join(n for n in TASKS if n != IN_DOMAIN)
                raise ConfigError(f"data.{key}[{i}]: unknown out-of-domain task {name!r} (known: {known})")
            if name in seen:
                raise ConfigError(f"data.{key}[{i}]: task {name!r} is already listed in data.{seen[name]}")
            seen[name] = key
    if not data["ood_tasks"]:
        raise ConfigError("data.ood_tasks: at least one out-of-domain task is needed")
    for key in ("params", "test_sizes"):
        for name in data[key]:
            if name not in TASKS:
                raise ConfigError(f"data.{key}.{name}: unknown task {name!r}")
    if IN_DOMAIN in data["test_sizes"]:
        raise ConfigError(f"data.test_sizes.{IN_DOMAIN}: the in-domain test size is data.n_test")
    if data["source"] == "dataset" and not data.get("dataset"):
        raise ConfigError("data.dataset: required when data.source is 'dataset'")
    ds = data.get("dataset")
    if ds and ds.get("data_files"):
        files = ds["data_files"].values() if isinstance(ds["data_files"], dict) else [ds["data_files"]]
        for f in files:
            if not (base_dir / f).exists():
                raise ConfigError(f"data.dataset.data_files: file not found: {f}")
    base = config["base"]
    pre = base.get("pretrained")
    if pre:
        p = base_dir / pre
        if is_local(pre, base_dir) and not p.is_dir():
            raise ConfigError(f"base.pretrained: model directory not found: {pre}")
    elif "pretrain" in base:  # neither: settings.BaseSettings says so, in _check_late
        m = base["pretrain"]["model"]
        if m["d_model"] % m["n_heads"]:
            raise ConfigError(f"base.pretrain.model.n_heads: {m['n_heads']} does not divide d_model {m['d_model']}")
        if m.get("n_kv_heads") and m["n_heads"] % m["n_kv_heads"]:
            raise ConfigError(f"base.pretrain.model.n_kv_heads: {m['n_kv_heads']} does not divide n_heads {m['n_heads']}")
        if base["pretrain"]["train"]["seq_len"] > m["max_len"]:
            raise ConfigError("base.pretrain.train.seq_len: longer than base.pretrain.model.max_len")
    sel = config["select"]
    if sel["layer"] is not None and sel["layer"] not in config["activations"]["layers"]:
        raise ConfigError(f"select.layer: {sel['layer']} is not one of activations.layers {config['activations']['layers']}")
    builtin = config["eval"]["builtin_tasks"]
    ood, where = (builtin.get("ood", []), "eval.builtin_tasks.ood") if builtin else (data["ood_tasks"], "data.ood_tasks")
    if sel["min_tasks"] is not None and sel["min_tasks"] > len(ood):
        raise ConfigError(f"select.min_tasks: {sel['min_tasks']} is more than the {len(ood)} tasks of {where}")
    cal = config.get("calibration") or {}
    if cal.get("causal") and cal["causal"]["task"] not in data["ood_tasks"]:
        raise ConfigError(f"calibration.causal.task: {cal['causal']['task']!r} is not one of data.ood_tasks "
                          f"{data['ood_tasks']}: the selection would never see it")
    _check_late(config)


def _check_late(config: dict) -> None:
    """What jobs would otherwise find out only when they run (minutes or hours in)."""
    from .settings import SECTIONS

    for name, cls in SECTIONS.items():  # the typed sections build (drift.nrn thresholds ordered, ...)
        cls.from_config(config[name])
    if 0 not in config["drift"]["seeds"]:  # offset 0 is the primary replica: mediation and the report read it
        raise ConfigError(f"drift.seeds: {config['drift']['seeds']} lacks 0, the primary dictionaries' seed offset")
    base = config["base"]
    if not base.get("pretrained"):  # the block count is known before any model exists
        n = base["pretrain"]["model"]["n_layers"]
        for i, L in enumerate(config["activations"]["layers"]):
            if L >= n:
                raise ConfigError(f"activations.layers[{i}]: layer {L} out of range "
                                  f"(base.pretrain.model.n_layers is {n})")
    cal = config["calibration"]
    if cal:
        if len(config["activations"]["layers"]) != 1:
            raise ConfigError(f"calibration: plants at one layer; activations.layers has "
                              f"{len(config['activations']['layers'])} ({config['activations']['layers']})")
        if cal["n_removed"] > cal["n_base"]:
            raise ConfigError(f"calibration.n_removed: {cal['n_removed']} is more than calibration.n_base {cal['n_base']}")
        if cal["base"] and not Path(cal["base"]).is_dir():
            raise ConfigError(f"calibration.base: {cal['base']} is not a model directory (build it first, or set "
                              "calibration.base: null to build the base here)")
    d = config["dictionaries"]
    if d["k"] >= d["n_latents"]:  # whatever the architecture: no arch names outside dictionaries/arch/
        raise ConfigError(f"dictionaries.k: {d['k']} is not below dictionaries.n_latents {d['n_latents']}")
    if d["source"] == "online":
        from .settings import OnlineSettings

        OnlineSettings.from_config(d["online"])
    tr = config["train"]
    procs, bs = tr["num_processes"], tr["batch_size"]
    if bs % (n := tr["sft"]["grad_accum"] * procs):
        raise ConfigError(f"train.batch_size: {bs} is not divisible by train.sft.grad_accum x train.num_processes = {n}")
    rows = bs * tr["rl"]["num_generations"]
    if rows % (n := tr["rl"]["grad_accum"] * procs):
        raise ConfigError(f"train.batch_size: {bs} x train.rl.num_generations = {rows} is not divisible by "
                          f"train.rl.grad_accum x train.num_processes = {n}")
