"""The models built from the Reformer's parts.

- :mod:`reformer.models.reformer_lm`: ``ReformerLM``, the Reformer language model (LSH
  attention, reversible layers; paper sections 2-3);
- :mod:`reformer.models.transformer_lm`: ``TransformerLM``, the baseline Transformer (full
  attention, ordinary residual layers);
- :mod:`reformer.models.language_model`: ``LanguageModel``, the layout and methods both
  language models share (embeddings, layer stack, head, loss, attention swap);
- :mod:`reformer.models.encoder_decoder`: ``ReformerEncoderDecoder``, the WMT14 translation
  model;
- shared building blocks: :mod:`reformer.models.blocks` (pre-norm sub-layers, residual
  stacks), :mod:`reformer.models.embeddings`, :mod:`reformer.models.loss`
  (``chunked_cross_entropy``) and :mod:`reformer.models.checks` (argument checks).

Every name is importable from here (``from reformer.models import ReformerLM``).

Example:
    >>> import torch
    >>> from reformer.models import TransformerLM
    >>> TransformerLM(vocab_size=10, d_model=8, n_heads=2, max_seq_len=8)(
    ...     torch.zeros(1, 8, dtype=torch.long)).shape
    torch.Size([1, 8, 10])
"""

from reformer.models.blocks import PreNorm, ResidualBlock, ResidualSequence
from reformer.models.embeddings import EMBEDDING_INIT_STD, POSITIONALS
from reformer.models.encoder_decoder import DecoderAttention, ReformerEncoderDecoder
from reformer.models.language_model import ATTENTIONS, LanguageModel
from reformer.models.loss import chunked_cross_entropy
from reformer.models.reformer_lm import ReformerLM
from reformer.models.transformer_lm import TransformerLM

__all__ = [
    "ATTENTIONS",
    "EMBEDDING_INIT_STD",
    "POSITIONALS",
    "DecoderAttention",
    "LanguageModel",
    "PreNorm",
    "ReformerEncoderDecoder",
    "ReformerLM",
    "ResidualBlock",
    "ResidualSequence",
    "TransformerLM",
    "chunked_cross_entropy",
]
