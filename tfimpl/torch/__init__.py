"""The PyTorch Transformer (mirrors tfimpl.numpy name for name; attention also takes attn_impl)."""

from tfimpl.torch.attention import (causal_mask, merge_heads, multi_head_attention,
                                    scaled_dot_product_attention, split_heads)
from tfimpl.torch.bert import bert, bert_embeddings
from tfimpl.torch.feed_forward import feed_forward, gelu, gelu_tanh, relu
from tfimpl.torch.layer_norm import layer_norm
from tfimpl.torch.layers import decoder, decoder_layer, encoder, encoder_layer, transformer
from tfimpl.torch.linear import linear
from tfimpl.torch.positional import learned_positional_embedding, sinusoidal_positional_encoding
from tfimpl.torch.recurrent import gru, lstm
from tfimpl.torch.softmax import softmax, softmax_

__all__ = ["causal_mask", "merge_heads", "multi_head_attention", "scaled_dot_product_attention",
           "split_heads", "bert", "bert_embeddings", "feed_forward", "gelu", "gelu_tanh", "relu",
           "layer_norm", "decoder", "decoder_layer", "encoder", "encoder_layer", "transformer",
           "linear", "learned_positional_embedding", "sinusoidal_positional_encoding", "softmax",
           "softmax_", "lstm", "gru"]
