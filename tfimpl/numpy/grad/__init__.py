"""Backward passes from first principles, mirrored with tfimpl.numpy's forward.

Each block has `<block>_forward(...) -> (output, cache)`, computing what tfimpl.numpy's forward
computes and keeping what its backward needs, and `<block>_backward(cache, grad_out) ->
(grad_inputs, grads)`: the vector-Jacobian product (each docstring gives it) with the parameter
gradients keyed in tfimpl.params' layout. Float64 results equal torch autograd's to ~1e-12.

    primitives  softmax, layer_norm, linear, activation (relu | gelu | gelu_tanh), tanh
    attention   sdpa (masks, causal), mha (self- and cross-attention)
    layers      feed_forward, encoder_layer (post- and pre-norm), encoder
    bert        bert_embeddings, bert (with the pooler)
    gpt         gpt (GPT-2-style decoder, training form: no KV cache; tied LM head)
    recurrent   lstm, gru (backpropagation through time, initial states included)
"""

from tfimpl.numpy.grad.attention import mha_backward, mha_forward, sdpa_backward, sdpa_forward
from tfimpl.numpy.grad.bert import (bert_backward, bert_embeddings_backward,
                                    bert_embeddings_forward, bert_forward)
from tfimpl.numpy.grad.gpt import gpt_backward, gpt_forward
from tfimpl.numpy.grad.layers import (encoder_backward, encoder_forward, encoder_layer_backward,
                                      encoder_layer_forward, feed_forward_backward,
                                      feed_forward_forward)
from tfimpl.numpy.grad.recurrent import (gru_backward, gru_forward, lstm_backward,
                                         lstm_forward)
from tfimpl.numpy.grad.primitives import (activation_backward, activation_forward,
                                          layer_norm_backward, layer_norm_forward,
                                          linear_backward, linear_forward, softmax_backward,
                                          softmax_forward, tanh_backward, tanh_forward)

__all__ = ["mha_backward", "mha_forward", "sdpa_backward", "sdpa_forward", "bert_backward",
           "bert_embeddings_backward", "bert_embeddings_forward", "bert_forward",
           "gpt_backward", "gpt_forward", "encoder_backward", "encoder_forward", "encoder_layer_backward",
           "encoder_layer_forward", "feed_forward_backward", "feed_forward_forward",
           "activation_backward", "activation_forward", "layer_norm_backward",
           "layer_norm_forward", "linear_backward", "linear_forward", "softmax_backward",
           "softmax_forward", "tanh_backward", "tanh_forward", "gru_backward", "gru_forward",
           "lstm_backward", "lstm_forward"]
