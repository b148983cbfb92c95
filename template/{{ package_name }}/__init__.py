"""The paper package: what this reproduction adds to the kit (:mod:`repro`).

It starts as a toy paper, small enough to read in ten minutes and to run end to end in
seconds, that shows every piece a real paper needs; replace each piece with your paper's:

- :mod:`.task`: the data (a synthetic reversal task: ``w 0 reverse(w)``), prepared with a
  sha256 manifest and loaded as ``{"tokens", "loss_mask"}`` items;
- :mod:`.model`: the model (a tiny causal Transformer: tokens ``(b, l)`` -> logits
  ``(b, l, V)``);
- :mod:`.config`: the ``model:`` and ``evaluate:`` sections of ``params.yaml``;
- :mod:`.experiment`: how a model is built, restored from ``model.pt`` and evaluated;
- :mod:`.paper`: ``PAPER``, the one object the kit looks up (``params.yaml``'s ``paper:``).

Modules import each other relatively (``from .model import ...``), so the package works
under any name.
"""
