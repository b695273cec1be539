"""Reusable layers: split-attention convolution and DropBlock."""
from .dropblock import DROPBLOCK_MODES, DropBlock, set_drop_prob
from .splat import SplitAttentionConv

__all__ = ["DROPBLOCK_MODES", "DropBlock", "SplitAttentionConv", "set_drop_prob"]
