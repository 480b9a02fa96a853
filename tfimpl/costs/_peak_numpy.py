"""Forward peak of tfimpl/numpy, in bytes above the caller's arrays, as the code allocates.

The big arrays are listed per phase in each function; besides them the code holds a few
bounded workspaces that scale with the thread count, not with B·T:

  ufunc buffer   min(U, n)·e bytes for an n-element operation, U = NUMPY_BUFSIZE (the
                 default of np.getbufsize(), 8192 elements): NumPy's iterator allocates one
                 while a ufunc broadcasts an operand ((rows, D) + (D,), (..., n) - (..., 1)) or
                 reads a strided one (q[tile]); one per operand that needs it.
  tile / block   attention tiles (`attention_peak`) and row blocks of element-wise passes
                 (for_row_blocks: tfimpl.tiling.ROW_BLOCK_ELEMENTS per block) each hold their own temporaries;
                 `threads` workers run at once (tfimpl/numpy/_threads.py), so their
                 workspaces add up. Which phases overlap between threads depends on timing; the
                 model takes each worker at its largest (measured exact with one thread).

Everything else counted here is an array the code writes. Not counted: Python objects (the
thread pool's futures, the list of tiles or block views), a few KiB at most.
"""

from __future__ import annotations

from tfimpl.tiling import ROW_BLOCK_ELEMENTS, tile_shape

NUMPY_BUFSIZE = 8192              # np.getbufsize() default: elements per ufunc buffer
F64 = 8


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _blocks(rows: int, width: int) -> tuple[int, int]:
    """(rows per block, number of blocks) of for_row_blocks over a (rows, width) array."""
    step = max(1, ROW_BLOCK_ELEMENTS // max(1, width))
    return min(step, rows), _ceil(rows, step)


def _workers(threads: int, items: int) -> int:
    return max(1, min(threads, items))


def _buffer(elements: int, e: int) -> int:
    """One ufunc buffer for an operation over `elements` elements of e bytes."""
    return min(NUMPY_BUFSIZE, elements) * e


def _int_bytes(limit: int) -> int:
    """Width of the smallest signed int holding -limit..limit (np.tri's aranges)."""
    return next(width for width in (1, 2, 4, 8) if limit < 2 ** (8 * width - 1))




def attention_peak(b, h, t, dk, e, causal, threads, out_given=False, strided_q=False) -> int:
    """scaled_dot_product_attention: the (B,H,T,T) scores, the (B,H,T,d_k) output unless the
    caller passes `out`, and per running tile (g heads, r rows) the largest of
        scaling   the scaled copy of q[tile] (g, r, d_k) (+ a ufunc buffer when q is a strided
                  view, as the heads of mha's fused Q|K|V are)
        causal    the (r, T) boolean future mask (np.tri: an outer comparison of two small-int
                  aranges, each read through a ufunc buffer)
        softmax   the row max and row sums (g, r) each, plus a ufunc buffer for the broadcast
                  subtract/multiply or the (T,) ones vector of the BLAS row sums, the larger;
                  the causal mask is still alive (a local of the tile's function).
    """
    g, r = tile_shape(h, t, t)
    tiles = b * _ceil(h, g) * _ceil(t, r)
    scaling = g * r * dk * e + (_buffer(g * r * dk, e) if strided_q else 0)
    masking = r * t + 2 * _buffer(r * t, _int_bytes(t)) if causal else 0
    softmax = (r * t if causal else 0) + 2 * g * r * e + max(_buffer(g * r * t, e), t * e)
    workspace = _workers(threads, tiles) * max(scaling, masking, softmax)
    return b * h * t * t * e + (0 if out_given else b * h * t * dk * e) + workspace


def _linear_bias(rows, out, e, threads) -> int:
    """linear's bias add: row blocks of the (rows, out) result, a ufunc buffer each."""
    n, blocks = _blocks(rows, out)
    return _workers(threads, blocks) * _buffer(n * out, e)


def layer_norm_workspace(rows, d, e, threads) -> int:
    """layer_norm's row blocks (n rows each), per worker: the (n, 1) mean, then the larger of
    np.mean's own division (by an int64 count, so through float64: two 8-byte buffers of up to
    U elements, none for float64 input) and the variance (n,) beside a ufunc buffer."""
    n, blocks = _blocks(rows, d)
    mean_division = 2 * min(n, NUMPY_BUFSIZE) * F64 if e != F64 else 0
    per_block = n * e + max(mean_division, n * e + _buffer(n * d, e))
    return _workers(threads, blocks) * per_block


def mha_peak(cfg, b, t, e, causal, threads) -> int:
    """multi_head_attention, self-attention, x given. Phases:
    projecting  the concatenated (3D, D) weight and (3D,) bias, the (B,T,3D) Q|K|V, its bias add;
    attending   Q|K|V + the (B,T,H,d_k) context buffer the core writes into + the core
                (scores and tiles; its q is a strided view of Q|K|V);
    output      Q|K|V + context + W_O's (B,T,D) output and its bias add (merging the heads of
                the context buffer is a view).
    """
    n, d = b * t, cfg.d_model
    nd = n * d * e
    projecting = (3 * d * d + 3 * d) * e + 3 * nd + _linear_bias(n, 3 * d, e, threads)
    attending = 4 * nd + attention_peak(b, cfg.n_heads, t, cfg.d_head, e, causal, threads,
                                        out_given=True, strided_q=True)
    output = 5 * nd + _linear_bias(n, d, e, threads)
    return max(projecting, attending, output)


def ffn_peak(cfg, b, t, e, threads) -> int:
    """feed_forward: the (B,T,d_ff) hidden (no bias yet), then row blocks that add the bias (a
    ufunc buffer) and apply the activation in place: relu nothing more, gelu one block-sized
    Φ(x) temporary, gelu_tanh one block-sized temporary (its √(2/π) is a scalar of the
    array's dtype, so no float64 buffers); then the (B,T,D) output and its bias add."""
    n, dff = b * t, cfg.d_ff
    rows, blocks = _blocks(n, dff)
    block = rows * dff * e
    act = {"relu": 0, "gelu": block,
           "gelu_tanh": block}[cfg.activation]
    activating = _workers(threads, blocks) * max(_buffer(block // e, e), act)
    output = n * cfg.d_model * e + _linear_bias(n, cfg.d_model, e, threads)
    return n * dff * e + max(activating, output)


def layer_peak(cfg, b, t, e, causal, threads) -> int:
    """encoder_layer, x given. Post-norm: attention; its output + norm1's (the Add & Norm of
    layer_norm(residual=)); norm1's output + the ffn; norm1's + the ffn's + norm2's output.
    Pre-norm: the normed input beside the attention; then the first sub-layer's output, the
    normed copy and the ffn."""
    nd = b * t * cfg.d_model * e
    norm = layer_norm_workspace(b * t, cfg.d_model, e, threads)
    mha = mha_peak(cfg, b, t, e, causal, threads)
    ffn = ffn_peak(cfg, b, t, e, threads)
    if cfg.norm_first:
        return max(nd + norm, nd + mha, 2 * nd + norm, 2 * nd + ffn)
    return max(mha, 2 * nd + norm, nd + ffn, 3 * nd + norm)


def encoder_peak(cfg, b, t, e, causal, threads) -> int:
    """Layers one after another; from the second on the previous output is alive beside the
    running layer; the final norm (when cfg.final_norm) beside the last output."""
    nd = b * t * cfg.d_model * e
    layer = layer_peak(cfg, b, t, e, causal, threads)
    running = nd if cfg.n_layers > 1 else 0
    final = 2 * nd + layer_norm_workspace(b * t, cfg.d_model, e, threads) if cfg.final_norm else 0
    return max(running + layer, final)


def model_peak(cfg, b, t, e, causal, threads) -> int:
    """bert: embeddings (the int64 token-type ids, word rows + positions (a broadcast add), the
    token-type rows, then the norm); the encoder beside the embeddings' output, which bert()
    keeps; the pooler's two (B, D) arrays beside the embeddings and the hidden states."""
    n, d = b * t, cfg.d_model
    nd = n * d * e
    ids = 8 * n
    embedding = ids + max(nd + _buffer(n * d, e), 2 * nd,
                          2 * nd + layer_norm_workspace(n, d, e, threads))
    stack = nd + encoder_peak(cfg, b, t, e, causal, threads)
    pooler = 2 * nd + 2 * b * d * e
    return max(embedding, stack, pooler)


def forward_peak(block, cfg, b, t, e, causal, threads) -> int:
    if block == "attention":
        return attention_peak(b, cfg.n_heads, t, cfg.d_head, e, causal, threads)
    if block == "mha":
        return mha_peak(cfg, b, t, e, causal, threads)
    if block == "ffn":
        return ffn_peak(cfg, b, t, e, threads)
    if block == "encoder_layer":
        return layer_peak(cfg, b, t, e, causal, threads)
    if block == "encoder":
        return encoder_peak(cfg, b, t, e, causal, threads)
    return model_peak(cfg, b, t, e, causal, threads)
