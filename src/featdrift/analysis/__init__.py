"""Feature drift: how the shared feature space moves during post-training.

nrn (pairwise crosscoders), mas (three-way crosscoder), stabilization (top-k
tuned-specific sets across checkpoints), preservation (base SAE on every
checkpoint), claims (the paper's three claims, decided from those numbers for every
dictionary seed and over the seeds) and seed_match (how far dictionaries trained from
different seeds find the same latents).
"""
