"""The NumPy Transformer: every block from first principles (mirrors tfimpl.torch name for name)."""

from tfimpl.numpy.attention import (causal_mask, merge_heads, multi_head_attention,
                                    scaled_dot_product_attention, split_heads)
from tfimpl.numpy.bert import bert, bert_embeddings
from tfimpl.numpy.feed_forward import feed_forward, gelu, gelu_tanh, relu
from tfimpl.numpy.layer_norm import layer_norm
from tfimpl.numpy.layers import decoder, decoder_layer, encoder, encoder_layer, transformer
from tfimpl.numpy.linear import linear
from tfimpl.numpy.positional import learned_positional_embedding, sinusoidal_positional_encoding
from tfimpl.numpy.recurrent import gru, lstm
from tfimpl.numpy.softmax import softmax, softmax_

__all__ = ["causal_mask", "merge_heads", "multi_head_attention", "scaled_dot_product_attention",
           "split_heads", "bert", "bert_embeddings", "feed_forward", "gelu", "gelu_tanh", "relu",
           "layer_norm", "decoder", "decoder_layer", "encoder", "encoder_layer", "transformer",
           "linear", "learned_positional_embedding", "sinusoidal_positional_encoding", "softmax",
           "softmax_", "lstm", "gru"]
