"""Task data: the synthetic world, external datasets, lm-eval task files, the pretraining corpus."""
