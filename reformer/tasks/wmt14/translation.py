"""The translation model on packed pairs, and its evaluation by BLEU.

:func:`encoder_decoder_kwargs` builds :class:`ReformerEncoderDecoder` arguments from the
experiment's ``model:`` section; :class:`PackedTranslationModel` lets the generic training
loop train it on packed pairs; :func:`evaluate_translation` decodes a prepared split (beam
search) and scores it with the paper's BLEU numbers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from reformer.tasks.wmt14.dataset import WMT14Dataset, load_tokenizer
from reformer.tasks.wmt14.params import BOS_ID, EOS_ID, PAD_ID
from repro.data.manifest import verify_manifest

__all__ = ["PackedTranslationModel", "encoder_decoder_kwargs", "evaluate_translation"]


def encoder_decoder_kwargs(
    model: Mapping[str, Any], vocab_size: int, max_len: int
) -> dict[str, Any]:
    """:class:`ReformerEncoderDecoder` arguments from ModelConfig-style keys.

    ``n_layers`` gives both the encoder and the decoder depth (the paper's base model: 6 and
    6); ``n_encoder_layers``/``n_decoder_layers`` override it.

    Example:
        >>> kw = encoder_decoder_kwargs({"d_model": 16, "n_layers": 2, "n_heads": 2,
        ...                              "d_ff": 32, "attention": "full"}, 100, 8)
        >>> kw["n_encoder_layers"], kw["n_decoder_layers"], kw["max_seq_len"], kw["pad_id"]
        (2, 2, 8, 0)
    """
    n_layers = int(model.get("n_layers", 6))
    return {
        "vocab_size": int(vocab_size),
        "d_model": int(model.get("d_model", 512)),
        "n_encoder_layers": int(model.get("n_encoder_layers", n_layers)),
        "n_decoder_layers": int(model.get("n_decoder_layers", n_layers)),
        "n_heads": int(model.get("n_heads", 8)),
        "d_ff": int(model.get("d_ff", 2048)),
        "max_seq_len": int(max_len),
        "dropout": float(model.get("dropout", 0.0)),
        "reversible": bool(model.get("reversible", True)),
        "pad_id": PAD_ID,
        "ff_chunks": int(model.get("ff_chunks", 1)),
        "loss_chunks": int(model.get("loss_chunks", 1)),
    }


class PackedTranslationModel(nn.Module):
    """A language-model view of an encoder-decoder, for packed pairs.

    ``forward(tokens (b, S + T))`` splits the packed sequence into the source ``(b, S)`` and
    the decoder input ``(b, T)``, runs the encoder-decoder once, and returns logits
    ``(b, S + T, V)`` whose position ``S + j`` is the decoder's prediction of target token
    ``j + 1``; the source positions get zeros (no loss ever counts them). ``loss`` (used by
    the training objective when ``loss_chunks > 1``) computes the chunked target loss
    without building the full logits.

    Args:
        model: a :class:`ReformerEncoderDecoder`.
        src_len: ``S``, the source part of the packed length (``max_len``).

    Example:
        >>> from reformer.models import ReformerEncoderDecoder
        >>> from reformer.tasks.wmt14 import pack_pair
        >>> core = ReformerEncoderDecoder(20, d_model=8, n_heads=2, max_seq_len=4)
        >>> tokens = pack_pair([5, 6], [7], max_len=4)[None]
        >>> PackedTranslationModel(core, 4)(tokens).shape
        torch.Size([1, 8, 20])
    """

    def __init__(self, model: nn.Module, src_len: int) -> None:
        super().__init__()
        self.model = model
        self.src_len = int(src_len)
        self.vocab_size = model.vocab_size
        self.loss_chunks = getattr(model, "loss_chunks", 1)

    def _split(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        if tokens.dim() != 2 or tokens.shape[1] <= self.src_len:
            raise ValueError(
                f"tokens of shape {tuple(tokens.shape)} is not allowed: must be (batch, "
                f"{self.src_len} + target length)"
            )
        return tokens[:, : self.src_len], tokens[:, self.src_len :]

    def forward(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        """Logits ``(b, S + T, V)`` (zeros on the source part)."""
        src, tgt_in = self._split(tokens)
        logits = self.model(src, tgt_in)  # (b, T, V)
        pad = logits.new_zeros(src.shape[0], self.src_len, logits.shape[-1])
        return torch.cat([pad, logits], dim=1)

    def loss(self, tokens: Tensor, targets: Tensor, loss_mask: Tensor | None = None) -> Tensor:
        """Mean cross-entropy of ``targets`` where ``loss_mask`` (``(b, S + T)`` each)."""
        src, tgt_in = self._split(tokens)
        s = self.src_len
        mask = loss_mask[:, s:] if loss_mask is not None else None
        return self.model.loss(src, tgt_in, targets[:, s:], loss_mask=mask)


@torch.no_grad()
def evaluate_translation(
    model: nn.Module,
    data_dir: str | os.PathLike,
    split: str = "test",
    *,
    method: str = "beam",
    beam_size: int = 4,
    alpha: float = 0.6,
    batch_size: int = 32,
    max_sentences: int | None = None,
    tokenize: str = "intl",
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Translate a prepared split and score it with the paper's three BLEU numbers.

    Args:
        model: a trained :class:`ReformerEncoderDecoder`.
        data_dir: the prepared directory.
        split: ``valid`` or ``test``.
        method: ``beam`` (the paper's: ``beam_size`` 4, ``alpha`` 0.6) or ``greedy``.
        batch_size: sentences per decoding batch.
        max_sentences: only the first N sentences (None: all).
        tokenize: the sacreBLEU tokenizer.
        device: where to decode (default: the model's device).

    Returns:
        :func:`reformer.bleu.bleu_scores`'s dict plus ``n_sentences`` and ``hypotheses``.
    """
    from reformer.bleu import bleu_scores
    from reformer.decoding import translate

    manifest = verify_manifest(data_dir, [f"{split}.src.npy", f"{split}.src.idx.npy"])
    tgt_lang = manifest["params"].get("tgt_lang", "de")
    verify_manifest(data_dir, [f"{split}.{tgt_lang}"])
    refs = (Path(data_dir) / f"{split}.{tgt_lang}").read_text().split("\n")[:-1]
    sp = load_tokenizer(data_dir)
    ds = WMT14Dataset(data_dir, split, max_len=model.max_seq_len, vocab_size=sp.get_piece_size())
    n = len(ds) if max_sentences is None else min(len(ds), max_sentences)
    sources = [ds.pair(i)[0][: model.max_seq_len - 1] + [EOS_ID] for i in range(n)]
    outputs = translate(
        model,
        sources,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        method=method,
        beam_size=beam_size,
        alpha=alpha,
        batch_size=batch_size,
        device=device,
    )
    hypotheses = [sp.decode(ids) for ids in outputs]
    scores = bleu_scores(hypotheses, refs[:n], tokenize=tokenize)
    return {**scores, "n_sentences": n, "hypotheses": hypotheses}
