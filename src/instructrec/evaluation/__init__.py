"""Evaluation room: metrics, the protocols of EVALUATION.md, reports and run manifests.

from instructrec.evaluation import run, evaluate_all, fit_baselines
models = fit_baselines(dataset, split)                 # pop, itemknn, sasrec
report = run("cand10", dataset, split, models, out_dir="runs/eval/demo")
report.table                                           # mean per model x metric
"""

from . import metrics
from .adapters import RetrieverModel
from .protocols import PROTOCOLS, Protocol
from .report import Report
from .run import BASELINES, evaluate_all, fit_baselines, run

__all__ = [
    "run",
    "evaluate_all",
    "fit_baselines",
    "Report",
    "PROTOCOLS",
    "Protocol",
    "RetrieverModel",
    "BASELINES",
    "metrics",
]
