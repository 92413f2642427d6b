"""Generalization features and causal interventions (docs/design.md "Generalization features and interventions").

critical.py   critical samples C_j (base wrong, RL right) per out-of-domain task
readout.py    pooled per-model readout fbar^m(x) of prompts through a dictionary
select.py     Score_k^j, the rho threshold, per-task sets, Jaccard overlap, the compact set
intervene.py  evaluation of edited models (featdrift-steered) for the set and random controls
effects.py    paired bootstrap intervals of every accuracy difference, table and plot
"""
