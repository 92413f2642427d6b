"""Plots shared by every stage: titled, labelled, PNG with fixed metadata (byte-stable)."""

from __future__ import annotations

from .io import atomic_path


def _pyplot():
    """matplotlib on Agg, imported on first use: jobs that draw nothing skip its ~1 s import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def __getattr__(name: str):
    if name == "plt":
        return _pyplot()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def save_figure(fig, path) -> None:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def line_plot(df, x: str, ys: list[str], path, title: str, ylabel: str, hue: str | None = None, logy: bool = False) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(ys), figsize=(5 * len(ys), 3.6), squeeze=False)
    for ax, y in zip(axes[0], ys):
        groups = df.groupby(hue, sort=True) if hue else [(None, df)]
        for name, g in groups:
            ax.plot(g[x], g[y], label=str(name) if name is not None else y)
        ax.set_xlabel(x)
        ax.set_ylabel(y if len(ys) > 1 else ylabel)
        if logy:
            ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    save_figure(fig, path)


def bar_plot(labels: list[str], values: list[float], path, title: str, ylabel: str, reference: list[float] | None = None,
             reference_label: str = "chance") -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(labels)), 3.6))
    ax.bar(labels, values, color="tab:blue", label="measured")
    if reference is not None:
        ax.scatter(labels, reference, color="tab:red", marker="_", s=400, label=reference_label, zorder=3)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    save_figure(fig, path)


def hist_plot(panels: dict[str, dict[str, "np.ndarray"]], path, title: str, xlabel: str, ylabel: str = "count",
              bins: int = 20, range: tuple[float, float] | None = None, logy: bool = False) -> None:
    """One panel per key of `panels`; in each, one step-outline histogram per labelled array, with a legend."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False, sharey=True)
    for ax, (panel, series) in zip(axes[0], panels.items()):
        for label, values in series.items():
            ax.hist(values, bins=bins, range=range, histtype="step", linewidth=1.4, label=str(label))
        ax.set_title(panel)
        ax.set_xlabel(xlabel)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(title)
    save_figure(fig, path)
