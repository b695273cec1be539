"""Batch-wise indexing in the graph, with no shape read."""

__all__ = ["batch_ids", "gather_rows"]


def batch_ids(F, index):
    """``(B, N)`` array of batch indices ``b``, shaped and typed like ``index (B, N)``."""
    bid = F.contrib.arange_like(index, axis=0).reshape((-1, 1))
    return F.broadcast_like(bid, index, lhs_axes=(1,), rhs_axes=(1,))


def gather_rows(F, data, index):
    """``data[b, index[b, n]]`` for ``data (B, M, ...)`` and ``index (B, N)``:
    ``(B, N, ...)``."""
    return F.gather_nd(data, F.stack(batch_ids(F, index), index, axis=0))
