"""Models: the character tokenizer, the tiny Llama, pretraining, safe loading."""
