"""WMT14 English-German: the paper's translation task (Table 4), prepared and packed.

Modules: :mod:`~reformer.tasks.wmt14.params` (parameters, pinned sources),
:mod:`~reformer.tasks.wmt14.sources` (downloads, archives),
:mod:`~reformer.tasks.wmt14.prepare` (tokenise and publish),
:mod:`~reformer.tasks.wmt14.dataset` (packed pairs), :mod:`~reformer.tasks.wmt14.translation`
(the model on packed pairs, BLEU evaluation) and :mod:`~reformer.tasks.wmt14.sample` (a tiny
offline corpus). Every public name is importable from this package.

Preparation (:func:`prepare_wmt14`):

1. download the standard WMT14 en-de training corpus (Europarl v7, Common Crawl, News
   Commentary v9: 4.5M sentence pairs), newstest2013 (valid) and newstest2014 (test) from
   statmt.org, each archive checked against a pinned checksum as it streams in (kept in
   ``cache_dir`` when given, so a second preparation downloads nothing);
2. read the wanted members out of the archives (plain text, or the WMT ``.sgm`` format of
   the test sets: one ``<seg>`` per line), check that source and target have as many lines;
3. train one SentencePiece model on the source and target training text together (a
   shared vocabulary, as the paper's model shares its embeddings), ids ``pad 0, unk 1,
   bos 2, eos 3``, with byte fallback (no ``<unk>`` in outputs);
4. tokenise every split, drop training pairs that do not fit ``max_len`` tokens per side,
   and save the ids as flat arrays with offsets.

Nothing is written into the output directory until every step has passed: all files are
made in a staging directory beside it and moved in at the end, followed by the sha256
manifest (:mod:`repro.data.manifest`). A checksum mismatch, a truncated or unreadable
archive, a missing member or unequal line counts raise a one-line
:class:`~repro.data.manifest.DataIntegrityError` and leave ``out_dir`` as it was.

Prepared directory::

    spm.model, spm.vocab               the shared SentencePiece vocabulary
    {train,valid,test}.src.npy         source ids, all sentences concatenated (uint16/int32)
    {train,valid,test}.src.idx.npy     int64 offsets (n + 1): sentence i is [idx[i], idx[i+1])
    {train,valid,test}.tgt{,.idx}.npy  the same for the target side
    {valid,test}.en, {valid,test}.de   the raw text, one sentence per line (BLEU references)
    stats.json                         pair counts (read, kept, dropped as too long)
    manifest.json

Training sees a pair as one packed sequence of length ``2 * max_len`` (so the generic
language-model training loop and its DDP set-up serve translation unchanged):

    tokens = [src ids, eos, pad ...  | bos, tgt ids, eos, pad ...]
              <------ max_len ------>  <------- max_len -------->

:class:`PackedTranslationModel` unpacks it for :class:`ReformerEncoderDecoder`
and returns logits where position ``max_len + j`` predicts target token ``j + 1``, which is
exactly the language model's next-token convention; ``loss_mask`` (see
:func:`packed_loss_mask`) counts the non-padding target tokens only.

Example:
    >>> import numpy as np
    >>> ids = np.array([7, 8, 9, 6], dtype=np.int64)
    >>> pack_pair(ids[:3], ids[3:], max_len=5).tolist()
    [7, 8, 9, 3, 0, 2, 6, 3, 0, 0]
"""

from __future__ import annotations

from reformer.tasks.wmt14.dataset import (
    WMT14Dataset,
    load_tokenizer,
    load_wmt14_split,
    pack_pair,
    packed_loss_mask,
)
from reformer.tasks.wmt14.params import (
    BOS_ID,
    DEFAULT_PARAMS,
    DEFAULT_SOURCES,
    EOS_ID,
    PAD_ID,
    SPLITS,
    TASK,
    UNK_ID,
    parse_checksum,
    resolve_seq_len,
    validate_params,
)
from reformer.tasks.wmt14.prepare import prepare_wmt14
from reformer.tasks.wmt14.sample import main, write_sample_corpus
from reformer.tasks.wmt14.sources import read_segments
from reformer.tasks.wmt14.translation import (
    PackedTranslationModel,
    encoder_decoder_kwargs,
    evaluate_translation,
)

__all__ = [
    "BOS_ID",
    "DEFAULT_PARAMS",
    "DEFAULT_SOURCES",
    "EOS_ID",
    "PAD_ID",
    "TASK",
    "UNK_ID",
    "SPLITS",
    "PackedTranslationModel",
    "WMT14Dataset",
    "encoder_decoder_kwargs",
    "evaluate_translation",
    "load_tokenizer",
    "load_wmt14_split",
    "main",
    "pack_pair",
    "packed_loss_mask",
    "parse_checksum",
    "prepare_wmt14",
    "read_segments",
    "resolve_seq_len",
    "validate_params",
    "write_sample_corpus",
]
