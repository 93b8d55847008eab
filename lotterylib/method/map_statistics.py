"""The names of the per-head attention statistics recorded for every example (torch-free, so that the read side
can check a result file without loading the model stack); :mod:`lotterylib.method.attention` computes them."""

STATS = ("cls", "sep", "diag_prev", "diag_next", "self", "within", "entropy", "max_entropy")
