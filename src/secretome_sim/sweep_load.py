"""Sweep file -> a checked ``Sweep``: the scenario, its resolved factors, and what to keep.

A sweep comes from a scenario's ``sweep:`` section or from its own file naming the scenario
(``scenario:``, relative to the sweep file). Every problem is reported at once, located in the
file that has it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import CheckContext, check_metrics
from .errors import Issue, ScenarioError, did_you_mean
from .scenario import STUDY_SECTIONS, Metric, OutputSpec, Scenario
from .study_file import no_section, read_study
from .sweep_factors import Factor, resolve_factors
from .sweep_spec import SweepFile, SweepSpec
from .validation import validate_document
from .yaml_source import Positions, position_of

MAX_POINTS = 10_000_000  # like 'samples': a design table of this size is ~100 MB per factor


@dataclass(frozen=True)
class Sweep:
    """A validated sweep, ready to run."""

    scenario: Scenario
    spec: SweepSpec
    factors: list[Factor]
    arms: list[str]
    outputs: list[str]
    metrics: list[Metric]
    source: Path | None  # the file the sweep section came from
    text: str | None  # that file's text (kept with the results)

    @property
    def sweep_id(self) -> str:
        if self.source is not None and self.source != self.scenario.source:
            return self.source.stem
        return self.scenario.scenario_id

    def fingerprint(self) -> str:
        """Identifies what the sweep computes: scenario, model and sweep spec. A resumed sweep
        must have the same fingerprint as the one that started the folder."""
        import scipy

        from . import __version__
        from .models import engine_versions

        model = self.scenario.model_definition
        meta = model.meta_path.read_text(encoding="utf-8") if model.meta_path else ""
        content = {
            "scenario": self.scenario.model_dump(mode="json", exclude=set(STUDY_SECTIONS)),
            "model": model.sha256,
            "metadata": hashlib.sha256(meta.encode()).hexdigest(),
            # what changes results; not the description or the chunking
            "spec": self.spec.model_dump(
                mode="json", exclude={"description", "chunk_size", "save_trajectories"}
            ),
            "versions": [__version__, scipy.__version__, engine_versions()],
        }
        text = json.dumps(content, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_sweep(path: str | Path, *, models_dir: str | Path | None = None) -> Sweep:
    """Read a scenario with a ``sweep:`` section, or a sweep file with ``scenario:``."""
    source = read_study(path, "sweep", SweepFile, SweepSpec, "sweep", models_dir)
    if source.spec is None:
        raise no_section(path, "sweep", "sweep")
    return build_sweep(source.scenario, source.spec, source.where, source.path, source.text)


def build_sweep(
    scenario: Scenario,
    spec: SweepSpec | dict[str, Any],
    where: tuple[str, tuple, Positions] | None = None,
    source: Path | None = None,
    text: str | None = None,
) -> Sweep:
    """Check a sweep spec against a loaded scenario (the API entry for sweeps built in code)."""
    filename, base, positions = where or ("<sweep>", (), {})
    if isinstance(spec, dict):
        checked, issues = validate_document(SweepSpec, spec, positions, filename)
        if issues:
            raise ScenarioError(issues, "sweep")
        assert checked is not None
        spec = checked
    factors, issues = resolve_factors(
        spec.factors, scenario, (filename, (*base, "factors"), positions)
    )

    def issue(key: tuple, message: str, hint: str | None = None) -> None:
        line, column = position_of(positions, (*base, *key))
        issues.append(Issue(filename, line, column, (*base, *key), message, hint))

    kinds = {f.name: f.kind for f in factors}
    if spec.dose_response is not None and kinds.get(spec.dose_response.factor) == "name":
        issue(
            ("dose_response", "factor"), "a dose-response fit needs a numeric factor, not a variant"
        )
    if spec.design == "grid" and len(factors) == len(spec.factors):
        size = math.prod(len(f.levels()) for f in factors)
        if size > MAX_POINTS:
            issue(
                ("factors",),
                f"the grid has {size:,} points; at most {MAX_POINTS:,} are allowed (use fewer "
                "values, or an lhs or sobol design with 'samples')",
            )
    arms = list(spec.arms or scenario.arms)
    for index, arm in enumerate(arms):
        if arm not in scenario.arms:
            issue(
                ("arms", index), f"no arm '{arm}' in the scenario", did_you_mean(arm, scenario.arms)
            )
        elif arm in arms[:index]:
            issue(("arms", index), f"arm '{arm}' is listed twice")
    entries = scenario.outputs or list(scenario.model_definition.outputs)
    available = [e.name if isinstance(e, OutputSpec) else e for e in entries]
    outputs = list(spec.outputs or available)
    for index, output in enumerate(outputs):
        if output not in available:
            issue(
                ("outputs", index),
                f"'{output}' is not among the scenario's outputs ({', '.join(available)})",
                did_you_mean(output, available),
            )
    issues += _metric_issues(spec, scenario, outputs, filename, base, positions)
    if issues:
        raise ScenarioError(issues, "sweep")
    metrics = list(spec.metrics or scenario.metrics)
    return Sweep(scenario, spec, factors, arms, outputs, metrics, source, text)


def _metric_issues(
    spec: SweepSpec,
    scenario: Scenario,
    outputs: list[str],
    filename: str,
    base: tuple,
    positions: Positions,
) -> list[Issue]:
    """The sweep's own metrics get the scenario's checks (known outputs, a threshold in each
    output's unit), located under the sweep's key."""
    if not spec.metrics:
        return []
    entries = scenario.outputs or list(scenario.model_definition.outputs)
    raw = {
        "metrics": [
            m if isinstance(m, str) else m.model_dump(mode="json", exclude_none=True)
            for m in spec.metrics
        ],
        "outputs": [
            e.model_dump(mode="json", exclude_none=True) if isinstance(e, OutputSpec) else e
            for e in entries
            if (e.name if isinstance(e, OutputSpec) else e) in outputs
        ],
    }
    found = check_metrics(CheckContext(raw, {}, filename, scenario.model_definition))
    located = []
    for item in found:
        path = (*base, *item.path)
        line, column = position_of(positions, path)
        located.append(Issue(filename, line, column, path, item.message, item.hint))
    return located
