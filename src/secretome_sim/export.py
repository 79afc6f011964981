"""export_scenario: a scenario -> SBML per arm, a SED-ML simulation, or a COMBINE archive.

Each arm is planned, compiled and brought to its state at t = start by the engine itself
(the same code ``run`` uses), then written by ``export_sbml`` as a self-contained SBML model
whose events dose exactly as the engine does; ``export_sedml`` describes the time course
and outputs; an OMEX archive bundles both with the scenario and model sources. The export is
proven against COPASI, an independent simulator, in ``tests/test_export.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from . import __version__
from .dosing import plan_arm, resolved_arms
from .errors import did_you_mean
from .export_sbml import ArmModel, export_arm
from .export_sedml import ExportError, Grid, TimeAxis, sedml_document, uniform_grid
from .loader import load_scenario
from .results import DISCLAIMER, OutputColumn
from .run import output_grid, reported_outputs
from .scenario import Scenario
from .simulate import compile_model, prepare_arm
from .sweep_store import atomic_paths
from .units import convert, parse_quantity, to_time

Format = Literal["sbml", "sedml", "omex"]
FORMATS: tuple[str, ...] = ("sbml", "sedml", "omex")


@dataclass
class ScenarioExport:
    """A scenario's arms as SBML, plus what SED-ML needs; nothing written yet."""

    scenario: Scenario
    arms: list[ArmModel]
    columns: list[OutputColumn]
    grid: Grid
    time_axis: TimeAxis
    warnings: list[str] = field(default_factory=list)

    @property
    def scenario_id(self) -> str:
        return self.scenario.scenario_id

    @property
    def keys(self) -> dict[str, str]:
        """Each arm's SId in the SED-ML and stem of its SBML file: the name with characters
        other than letters, digits and _ as _, made unique ('high-dose' and 'high_dose'), and
        never a name the archive reserves ('manifest', 'metadata')."""
        keys: dict[str, str] = {}
        taken = {"manifest", "metadata"}
        for arm in self.arms:
            base = re.sub(r"\W", "_", arm.arm)
            base = base if re.match(r"[A-Za-z_]", base) else f"_{base}"
            key, number = base, 1
            while key.lower() in taken:
                number += 1
                key = f"{base}_{number}"
            taken.add(key.lower())
            keys[arm.arm] = key
        return keys

    def file_name(self, arm: str) -> str:
        """The SBML file of an arm: ``<key>.xml`` (see ``keys``)."""
        return f"{self.keys[arm]}.xml"

    def sedml(self) -> str:
        title = f"{self.scenario_id}: secretome-sim {__version__}"
        return sedml_document(
            self.arms,
            self.keys,
            self.columns,
            self.grid,
            self.scenario.solver,
            self.time_axis,
            title,
        )


@dataclass(frozen=True)
class ExportResult:
    """What ``export_scenario`` wrote."""

    format: str
    paths: list[Path]
    export: ScenarioExport

    @property
    def warnings(self) -> list[str]:
        return self.export.warnings


def build_export(
    scenario: Scenario | str | Path,
    *,
    arms: Sequence[str] | None = None,
    models_dir: str | Path | None = None,
) -> ScenarioExport:
    """Every chosen arm (all by default) as SBML, in memory. Raises ExportError for an
    unknown arm or an arm whose pre-equilibration fails when the scenario says it must not."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, models_dir=models_dir)
    model = scenario.model_definition
    resolved = resolved_arms(scenario)
    chosen = list(dict.fromkeys(arms)) if arms else list(resolved)
    for name in chosen:
        if name not in resolved:
            hint = did_you_mean(name, resolved)
            raise ExportError(
                f"unknown arm '{name}' (arms: {', '.join(resolved)})"
                + (f"; did you mean '{hint}'?" if hint else "")
            )
    outputs, columns = reported_outputs(scenario, model)
    _, model_times = output_grid(scenario, model)
    display_unit = f"{scenario.time.end.units:~}"
    time_axis = TimeAxis(
        convert(parse_quantity(f"1 {model.time_unit}"), display_unit), display_unit
    )
    plans = [plan_arm(name, resolved[name], scenario, model) for name in chosen]
    compiled = compile_model(model, plans, outputs, scenario.solver)
    max_step = scenario.solver.max_step
    grid = uniform_grid(model_times, to_time(max_step, model.time_unit) if max_step else None)
    warnings = []
    if grid.start != 0:
        warnings.append(
            f"time starts at {grid.start:g} {model.time_unit}: simulate from the SED-ML's "
            "initial time (COPASI does); libRoadRunner (Tellurium) evaluates event triggers "
            "when it loads a model, at t = 0, and then misses or misplaces doses when the "
            "simulation starts elsewhere"
        )
    if not grid.uniform:
        warnings.append(
            f"the output grid's last step is shorter than the others; SED-ML states a uniform "
            f"grid, so the SED-ML uses {grid.steps} equal steps from {grid.start:g} to "
            f"{grid.end:g} {model.time_unit} (the SBML models are unaffected)"
        )
    settings = scenario.preequilibration
    exported = []
    for plan in plans:
        steady = prepare_arm(compiled, plan, settings)
        if steady is not None and not steady.found:
            message = f"arm '{plan.name}': {steady.message}"
            if settings is not None and settings.on_failure == "error":
                raise ExportError(message + " (set preequilibrate.on_failure: warn to export)")
            warnings.append(message + "; its initial state is where the search stopped")
        exported.append(
            export_arm(
                scenario_id=scenario.scenario_id,
                scenario_file=str(scenario.source) if scenario.source else None,
                model=model,
                compiled=compiled,
                plan=plan,
                outputs=outputs,
                start=float(model_times[0]),
                end=float(model_times[-1]),
                steady=steady,
            )
        )
    return ScenarioExport(scenario, exported, columns, grid, time_axis, warnings)


def default_export_folder(scenario: Scenario, root: str | Path = "results") -> Path:
    return Path(root) / scenario.scenario_id / "export"


def export_scenario(
    scenario: Scenario | str | Path,
    *,
    format: Format = "omex",
    arms: Sequence[str] | None = None,
    out: str | Path | None = None,
    models_dir: str | Path | None = None,
) -> ExportResult:
    """Write the scenario's arms in a community standard, into ``out`` (default
    ``results/<scenario id>/export``), every file atomically:

    - ``sbml``: ``<arm>.xml`` per arm;
    - ``sedml``: those plus ``<scenario id>.sedml`` (which refers to them by file name);
    - ``omex``: ``<scenario id>.omex``, a COMBINE archive of the SBML, the SED-ML (master),
      the scenario file and the model's own sources.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown format '{format}' (formats: {', '.join(FORMATS)})")
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, models_dir=models_dir)
    folder = Path(out) if out is not None else default_export_folder(scenario)
    try:  # before the arms are built: a bad destination should not cost a pre-equilibration
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot export into {folder}: {exc.strerror or exc}") from None
    export = build_export(scenario, arms=arms)
    try:
        return _write(export, format, folder)
    except OSError as exc:
        raise ExportError(f"cannot write into {folder}: {exc.strerror or exc}") from None


def _write(export: ScenarioExport, format: str, folder: Path) -> ExportResult:
    texts = {export.file_name(arm.arm): arm.sbml for arm in export.arms}
    if format == "sedml":
        texts[f"{export.scenario_id}.sedml"] = export.sedml()
    if format == "omex":
        path = folder / f"{export.scenario_id}.omex"
        with atomic_paths(path) as (temporary,):
            _write_archive(export, texts, temporary)
        return ExportResult(format, [path], export)
    paths = [folder / name for name in texts]
    with atomic_paths(*paths) as temporaries:
        for temporary, text in zip(temporaries, texts.values(), strict=True):
            temporary.write_text(text, encoding="utf-8")
    return ExportResult(format, paths, export)


YAML_FORMAT = "http://purl.org/NET/mediatypes/application/x-yaml"
TEXT_FORMAT = "http://purl.org/NET/mediatypes/text/plain"


def _write_archive(export: ScenarioExport, sbml: dict[str, str], path: Path) -> None:
    """A COMBINE archive (OMEX): SBML per arm, SED-ML as master, the sources for provenance."""
    import libcombine

    archive = libcombine.CombineArchive()
    sbml_format = libcombine.KnownFormats.lookupFormat("sbml")
    for name, text in sbml.items():
        _add(archive, text, name, sbml_format, master=False)
    sedml_name = f"{export.scenario_id}.sedml"
    _add(archive, export.sedml(), sedml_name, libcombine.KnownFormats.lookupFormat("sedml"), True)
    scenario = export.scenario
    if scenario._text is not None and scenario.source is not None:
        _add(archive, scenario._text, f"source/{Path(scenario.source).name}", YAML_FORMAT, False)
    model = export.scenario.model_definition
    _add(archive, model.text, f"source/{model.path.name}", _source_format(model.format), False)
    if model.meta_path is not None:
        text = model.meta_path.read_text(encoding="utf-8")
        _add(archive, text, f"source/{model.meta_path.name}", YAML_FORMAT, False)
    itself = archive.getManifest().createContent()  # the archive's own entry, as OMEX asks
    itself.setLocation(".")
    itself.setFormat("http://identifiers.org/combine.specifications/omex")
    itself.setMaster(False)
    description = libcombine.OmexDescription()
    description.setAbout(".")
    description.setDescription(
        f"Scenario '{export.scenario_id}' exported by secretome-sim {__version__}: "
        f"{len(export.arms)} arm(s) as SBML with dosing events, simulated by {sedml_name}. "
        + DISCLAIMER
    )
    now = libcombine.Date()
    now.setDateAsString(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    description.setCreated(now)
    archive.addMetadata(".", description)
    path.unlink(missing_ok=True)  # libCOMBINE adds to an existing zip
    if not archive.writeToFile(str(path)):
        raise ExportError(f"libCOMBINE could not write {path}")
    archive.cleanUp()


def _add(archive, text: str, location: str, format: str, master: bool) -> None:
    if not archive.addFileFromString(text, f"./{location}", format, master):
        raise ExportError(f"libCOMBINE could not add {location} to the archive")


def _source_format(kind: str) -> str:
    import libcombine

    return libcombine.KnownFormats.lookupFormat("sbml") if kind == "sbml" else TEXT_FORMAT
