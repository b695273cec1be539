"""Reusable layers: split-attention convolution and DropBlock."""
from .dropblock import DropBlock, set_drop_prob
from .splat import SplitAttentionConv

__all__ = ["DropBlock", "SplitAttentionConv", "set_drop_prob"]
