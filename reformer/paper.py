"""The Reformer as a plug-in of the reproduction kit: ``params.yaml``'s ``paper: reformer``.

Every stage of the pipeline finds the paper through :func:`repro.paper.load_paper`, which
imports this module and takes :data:`PAPER`. It names the paper's tasks
(:mod:`reformer.tasks`), its config sections (:mod:`reformer.config`), how a model is built,
restored and evaluated (:mod:`reformer.experiment`), its own report tables
(:mod:`reformer.report_tables`: Table 2 with the fast.ai reproduction beside it), its cost
model (:mod:`reformer.cost`: the paper's Tables 1 and 3) and its benchmark workloads
(:mod:`reformer.benchmarks`).
"""

from __future__ import annotations

from reformer import config, cost, experiment, report_tables
from reformer.benchmarks import WORKLOADS
from reformer.tasks import TASKS
from repro.paper import Paper

__all__ = ["PAPER"]

PAPER = Paper(
    name="reformer",
    title="Reformer: The Efficient Transformer",
    tasks=TASKS,
    model_config=config.ModelConfig,
    evaluate_config=config.EvaluateConfig,
    build_model=experiment.build_model,
    load_model=experiment.load_model,
    evaluate=experiment.evaluate,
    check_experiment=config.check_experiment,
    cost_model=cost.COST_MODEL,
    benchmark=WORKLOADS,
    report_tables=report_tables.report_tables,
    readme_tables=report_tables.readme_tables,
)
