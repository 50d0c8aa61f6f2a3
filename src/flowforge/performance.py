"""Every trick flowforge plays for speed, in one place, each with its switch.

None of them changes what is computed (beyond floating-point rounding, which the tests
bound); each only changes how fast. ``benchmarks/speed.py`` measures them: its
``flowforge`` rows use them all, ``flowforge-autograd`` trains without the hand-written
gradients, ``flowforge-compiled`` through ``torch.compile``.

Training (``fit``, ``train``):

1. Hand-written gradients (``flowforge.gradients``, composed by
   ``flowforge.training.handwritten``): the mean NLL's gradient with the chain rule
   written out, from the pieces' own ``handwritten()`` forms, instead of autograd's
   graph. Used when every piece has one, in one process, eagerly.
   Switch: ``fit(..., gradients="autograd")``.
2. Flat parameters (``flowforge.training.optim.FlatParameters``): for the duration of
   training, every parameter and gradient is a view of one buffer, so ``FlatAdam``
   updates all of them in one (fused) operation, ``zero_grad`` is one fill, and the
   weight average is one ``lerp``. Switch: ``adam(..., flat=False)`` (and ``fit``'s
   ``flat`` option), which gives torch's own Adam.
3. ``FlatAdam.step`` skips torch's per-call profiling wrapper when no step hook and no
   profiler is watching. Switch: register any step hook (or run the profiler).
4. Cached views of the weights in the hand-written forms (``W``, ``W.T``, bias columns):
   rebuilt whenever a parameter's storage changed since the last call (a ``.to()``,
   entering or leaving a ``FlatParameters`` block). Switch: as 1.
5. The thread policy (``flowforge.threads``): one CPU thread for steps smaller than
   ``SMALL_STEP_FLOPS``, where a second thread only adds synchronisation (and stalls
   when another process holds the other core); the command line uses one thread unless
   ``OMP_NUM_THREADS`` is set. Switch: ``fit(..., threads=None)`` (torch's own setting)
   or a number; ``OMP_NUM_THREADS`` for the command line.
6. One host synchronisation per epoch: the losses stay on the device until the epoch
   ends. No switch (nothing to trade).
7. ``torch.compile``: opt-in, ``fit(..., compile=True)``; compilation happens before the
   first epoch and is timed apart (``History.compile_seconds``).

Every forward pass (training with autograd, ``log_prob``, ``sample``):

8. ``MLP.forward`` calls its plain children (``Linear`` and the usual activations) as
   functions, with activations in place, instead of through ``nn.Module.__call__``; a
   child with hooks is called as a module. Switch: ``flowforge.nets.mlp.DIRECT_CALLS =
   False``.
9. Transposed layouts for many rows: from ``flowforge.nets.mlp.TRANSPOSED_ROWS`` rows an
   ``MLP`` works on ``(features, rows)`` activations, and from
   ``flowforge.values.TRANSPOSED_CONCAT_ROWS`` rows ``Merge`` joins parts through their
   transposes. Switch: set either constant to ``math.inf``.
10. The normal base's ``log_prob`` in closed form with cached constants (rebuilt when
    its buffers change) and a matrix-vector row sum. Switch:
    ``flowforge.distributions.multivariate.CLOSED_FORM_NORMAL = False``.
11. Chunked evaluation: ``NormalizingFlow.log_prob``, ``sample`` and
    ``sample_and_log_prob`` run in chunks of ``flowforge.evaluate.DEFAULT_CHUNK`` rows
    into a preallocated result whenever no autograd graph is being recorded (grad mode
    off, or nothing that would be recorded requires a gradient), which keeps a small
    flow's intermediates in the CPU's cache and bounds memory by one chunk; a call that
    needs a gradient is one pass, as before. Flows of other layers are chunked through
    their own layers in eval mode only (batch statistics in training mode must see the
    whole batch). ``log_likelihood``, ``mean_nll`` and ``sample_points`` chunk too.
    Switch: ``flowforge.evaluate.CHUNKED_CALLS = False``; their ``chunk_size`` argument.
12. Column plans (``flowforge.columns.ColumnPlan``): in those chunks, a flow of
    ``Split``, ``Merge``, ``Swap``, ``Reverse``, ``Permute``, affine, additive or spline
    couplings with plain ``MLP`` conditioners, ``MaskedAutoregressive`` layers (MAF,
    autoregressive NSF) and their ``Inverse`` (IAF), and row-wise layers (``Scale``,
    ``Translate``, ``ActNorm``, ``LULinear``: NICE, Glow, LU mixing) is run feature-major,
    each network layer one ``mm`` into a buffer reused from chunk to chunk (the bias
    folded into the weight, but for a layer reading one row), activations in place; the
    transformers' own ``forward``/``inverse`` and the row-wise layers themselves (on a
    transposed view) do the rest. Switch: ``flowforge.evaluate.COLUMN_PLANS = False``.
13. Column blocks (``flowforge.nets.columns``): a wide network (hidden width 32 and up:
    blocks of 16,384 columns at 32, 4,096 at 64) runs a chunk in blocks, so that its
    hidden activations stay in the core's cache between one product and the next
    (autoregressive and coupling NSF ``log_prob``; ``python -m benchmarks.column_plans
    --switch blocks`` measures it); narrow networks are not split. Switch:
    ``flowforge.nets.columns.BLOCK_WORK = math.inf`` (no blocks).
"""

from __future__ import annotations


def switches() -> dict[str, object]:
    """The current value of every module-level switch above (for a benchmark's record)."""
    from flowforge.distributions import multivariate
    from flowforge.evaluate import CHUNKED_CALLS, COLUMN_PLANS, DEFAULT_CHUNK
    from flowforge.nets import columns, mlp
    from flowforge.threads import SMALL_STEP_FLOPS
    from flowforge.values import TRANSPOSED_CONCAT_ROWS

    return {
        "DIRECT_CALLS": mlp.DIRECT_CALLS,
        "TRANSPOSED_ROWS": mlp.TRANSPOSED_ROWS,
        "TRANSPOSED_CONCAT_ROWS": TRANSPOSED_CONCAT_ROWS,
        "CLOSED_FORM_NORMAL": multivariate.CLOSED_FORM_NORMAL,
        "DEFAULT_CHUNK": DEFAULT_CHUNK,
        "CHUNKED_CALLS": CHUNKED_CALLS,
        "COLUMN_PLANS": COLUMN_PLANS,
        "BLOCK_WORK": columns.BLOCK_WORK,
        "SMALL_STEP_FLOPS": SMALL_STEP_FLOPS,
    }
