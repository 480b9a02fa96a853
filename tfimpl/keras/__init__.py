"""Keras 3 (TensorFlow backend): the blocks Keras has natively, with tfimpl's weights.

Mirrors tfimpl.numpy name for name where Keras has the block: attention (keras.ops and the
MultiHeadAttention layer's own explicit path), layers.MultiHeadAttention, the feed-forward
(layers.Dense + activation), an encoder layer and stack built the way Keras' examples build one
(post- and pre-norm), and a BERT-shaped encoder from Keras layers. Each functional entry point
builds the Keras layer, loads tfimpl's parameter layout into it (tfimpl.keras.loaders documents
the kernel mapping) and calls it; `loaders.build_*` return the built layers for repeated calls.

Importing this package imports TensorFlow (seconds) and fixes KERAS_BACKEND=tensorflow;
nothing else in the project imports it at import time.
"""

from tfimpl.keras.attention import (causal_mask, keras_attention_mask, merge_heads,
                                    multi_head_attention, scaled_dot_product_attention,
                                    split_heads)
from tfimpl.keras.bert import bert, bert_embeddings
from tfimpl.keras.feed_forward import feed_forward, gelu, gelu_tanh, relu
from tfimpl.keras.layers import encoder, encoder_layer

__all__ = ["causal_mask", "keras_attention_mask", "merge_heads", "multi_head_attention",
           "scaled_dot_product_attention", "split_heads", "bert", "bert_embeddings",
           "feed_forward", "gelu", "gelu_tanh", "relu", "encoder", "encoder_layer"]
