"""The learner-facing guide: worked examples (`explain`) and figures (`figures`).

`explain.py` computes each small example step by step with our NumPy code and sets it beside
the PyTorch call; `printer.py` lays the steps out for a terminal; `attention_maps.py` runs a
BERT through tfimpl.numpy keeping every layer's attention weights; `figures.py` draws them.
"""

# The sentence the attention figure reads unless told otherwise ("it" refers back to "cat").
DEFAULT_SENTENCE = "The cat sat on the mat because it was tired."
