"""lotterylib: the pruning engine behind the lotterybook.

Reproduces the method of Prasanna, Rogers & Rumshisky (2020), "When BERT Plays the Lottery,
All Tickets Are Winning": magnitude pruning (m-pruning) and structured pruning of heads and
MLPs (s-pruning), good / random / bad subnetworks, re-fine-tuning and the paper's analyses.

Conventions used everywhere: a mask value of 1 keeps a component, 0 removes it.
``head_mask`` has shape (n_layers, n_heads), ``mlp_mask`` has shape (n_layers,).
"""

__version__ = "0.1.0"
