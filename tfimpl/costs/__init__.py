"""The analytic cost model: the theory the harness checks, in one place.

    params  parameter counts per component          param_counts, non_embedding_params
    flops   forward / backward FLOPs per component  forward_flops, backward_flops,
            (2·m·n·k per matmul; element-wise apart) elementwise_flops, crossover_seq_len
    memory  activation bytes, predicted peak bytes  activation_memory, predicted_peak_bytes
    components  FLOPs per step of a forward         component_flops, components
    bytes   minimum bytes per step, FLOP/byte       component_bytes, component_intensity
    decode  GPT-2 prefill / decode-step FLOPs       prefill_flops, decode_flops,
            (dense and causal), KV-cache bytes,     decode_recompute_flops, kv_cache_bytes,
            a decode step's bytes and time floor    decode_bytes, decode_time_floor_s
    recurrent  LSTM / GRU parameters, FLOPs per   recurrent_params, recurrent_flops,
            step and per sequence, state, saved  recurrent_step_flops, recurrent_state_bytes,
            activations and peak bytes           recurrent_saved_bytes, recurrent_peak_bytes
    quantized  int8 weight bytes (+ scales,         int8_weight_bytes, fp32_weight_bytes,
            zero points), int8 MACs apart           int8_macs, quantized_linears

Every function takes a `tfimpl.config.ModelConfig` and plain ints and returns plain ints (or
dicts of ints), so tests compare exactly. Each module's docstring derives its formulas.
"""

from tfimpl.costs.bytes import (arithmetic_intensity, component_bytes,
                                component_intensity)
from tfimpl.costs.decode import (decode_bytes, decode_flops, decode_recompute_flops,
                                 decode_time_floor_s, kv_cache_bytes, prefill_flops, rules_of_thumb)
from tfimpl.costs.components import COMPONENT_LABELS, component_flops, components
from tfimpl.costs.flops import (ATTENTION_KEYS, MATMUL_KEYS, attention_share, backward_flops,
                                attention_ffn_crossover, crossover_seq_len, elementwise_flops,
                                forward_flops, matmul_flops)
from tfimpl.costs.memory import activation_memory, predicted_peak_bytes
from tfimpl.costs.recurrent import (recurrent_backward_flops, recurrent_flops,
                                    recurrent_params, recurrent_peak_bytes,
                                    recurrent_saved_bytes, recurrent_state_bytes,
                                    recurrent_step_flops, recurrent_working_set_bytes)
from tfimpl.costs.quantized import (fp32_weight_bytes, int8_macs, int8_weight_bytes,
                                    quantized_linears)
from tfimpl.costs.params import (PARAM_KINDS, linear_params, non_embedding_params, norm_params,
                                 param_counts)

__all__ = ["COMPONENT_LABELS", "arithmetic_intensity", "component_bytes", "component_flops",
           "component_intensity", "components",
           "decode_bytes", "decode_flops", "decode_recompute_flops", "decode_time_floor_s",
           "kv_cache_bytes", "prefill_flops", "rules_of_thumb",
           "ATTENTION_KEYS", "MATMUL_KEYS", "PARAM_KINDS", "activation_memory", "attention_share",
           "attention_ffn_crossover", "backward_flops", "crossover_seq_len", "elementwise_flops", "forward_flops",
           "linear_params", "matmul_flops", "non_embedding_params", "norm_params",
           "param_counts", "predicted_peak_bytes", "recurrent_backward_flops", "recurrent_flops",
           "recurrent_params", "recurrent_peak_bytes", "recurrent_saved_bytes",
           "recurrent_state_bytes", "recurrent_step_flops", "recurrent_working_set_bytes",
           "fp32_weight_bytes", "int8_macs", "int8_weight_bytes", "quantized_linears"]
