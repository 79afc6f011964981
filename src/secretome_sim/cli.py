"""Command line: a thin layer over the Python API. ``main(argv) -> exit code``.

Exit codes: 0 success; 1 a simulation failed (what completed is kept); 2 invalid input (nothing
written). Heavy libraries are imported inside each command so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from . import __version__

DESCRIPTION = """\
Mechanistic ODE simulation of stem-cell secretome therapy.

Describe a dose scenario in YAML (model, product, arms with doses and perturbations, outputs,
metrics); run it to get trajectories, metrics and plots in a results folder. Results are model
predictions from simplified pathway models, not measurements.
"""

EPILOG = """\
examples:
  secretome-sim models                       list registered models
  secretome-sim models show secretome_delivery
  secretome-sim validate scenarios/delivery_hydrogel_vs_bolus.yaml
  secretome-sim run scenarios/delivery_hydrogel_vs_bolus.yaml
  secretome-sim sweep scenarios/sweep_angio_vegf_plgf.yaml --workers 2
  secretome-sim sweep scenarios/sweep_angio_vegf_plgf.yaml --resume --out results/x/sweep-1
  secretome-sim sensitivity scenarios/sensitivity_cardio_morris.yaml
  secretome-sim sensitivity scenarios/kidney_diabetic_exosomes.yaml --method local
  secretome-sim optimize scenarios/optimize_kidney_exosome_schedule.yaml --workers 2
  secretome-sim export scenarios/cardio_doxorubicin_cm.yaml --format omex
  secretome-sim export scenarios/cardio_doxorubicin_cm.yaml --arm dox_cm --format sbml

exit codes: 0 ok, 1 simulation failed (completed arms or points kept), 2 invalid input
(nothing written), 130 interrupted
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretome-sim",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"secretome-sim {__version__}")
    parser.add_argument(
        "--models-dir",
        metavar="DIR",
        help="extra directory to look for registered models (also: $SECRETOME_SIM_MODELS)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a scenario and write a results folder",
        description="Run every arm of SCENARIO and write the resolved scenario, a manifest, "
        "trajectories.csv, metrics.csv, dose_events.csv and trajectories.png into a new run "
        "folder (default results/<scenario-id>/<timestamp>/). The folder appears whole or not "
        "at all. On a solver failure, the arms that completed are written and the exit code is 1.",
    )
    run.add_argument("scenario", type=Path, help="scenario YAML file")
    run.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="run folder to create (must not exist or be empty); default "
        "results/<scenario-id>/<timestamp>/",
    )
    run.add_argument("--no-plot", action="store_true", help="skip trajectories.png")
    run.add_argument("-q", "--quiet", action="store_true", help="print only the run folder")

    sweep = commands.add_parser(
        "sweep",
        help="run a parameter/dose sweep and write a sweep folder",
        description="Run the sweep in SCENARIO (its 'sweep:' section, or a sweep file with "
        "'scenario: <path>') at every design point: grid, Latin hypercube or Sobol. Writes "
        "sweep.json, design.csv, chunks/ (one file per finished chunk), results.parquet and "
        "results.csv (one row per point and arm: factor values, status, message, metrics), "
        "summary.json (failures and their reasons), fits.csv (Hill/Emax fits when one dose "
        "factor varies) and plots/. A point whose simulation fails is recorded and the sweep "
        "goes on. Interrupted? Rerun with --resume and the same --out: finished chunks are "
        "kept, the rest run.",
    )
    sweep.add_argument("scenario", type=Path, help="scenario with a sweep: section, or sweep file")
    _execution_options(sweep, "sweep", "results/<sweep-id>/sweep-<timestamp>/", "chunks")
    sweep.add_argument(
        "--save-trajectories",
        action="store_true",
        default=None,
        help="also keep every trajectory in trajectories.zarr (point x arm x time x output; "
        "open with xarray); needed for uncertainty bands",
    )
    sweep.add_argument(
        "--chunk-size", type=int, metavar="N", help="points per chunk (default: automatic, <= 50)"
    )

    sensitivity = commands.add_parser(
        "sensitivity",
        help="local, Morris or Sobol sensitivity of metrics to parameters and dose factors",
        description="Which model parameters and dose factors matter for each metric of each arm. "
        "SCENARIO is a scenario (defaults: every model parameter with a metadata range; the "
        "scenario's arms, outputs and metrics), a scenario with a 'sensitivity:' section, or a "
        "sensitivity file with 'scenario: <path>'. local: normalised sensitivities "
        "S = d ln y / d ln p at the nominal point by central differences (and S(t) of every "
        "output over time); morris: elementary-effects screening (mu*, sigma); sobol: "
        "first-order and total indices with confidence intervals (SALib). Ranges come from the "
        "model metadata unless the file gives them. The points run as a sweep (points/ in the "
        "study folder: parallel, resumable). Writes indices.csv (with each input's source and "
        "evidence, influence and a flag for influential inputs whose source is 'assumed'), "
        "report.md, summary.json, over_time.parquet (local) and plots/.",
    )
    sensitivity.add_argument(
        "scenario", type=Path, help="scenario, scenario with a sensitivity: section, or study file"
    )
    sensitivity.add_argument(
        "--method",
        choices=["local", "morris", "sobol"],
        help="overrides the file's method (default there: local)",
    )
    _execution_options(
        sensitivity, "study", "results/<study-id>/sensitivity-<method>-<timestamp>/", "points"
    )
    optimize = commands.add_parser(
        "optimize",
        help="find the dose schedule that best meets an objective under constraints",
        description="Optimise the schedule of one arm as the 'optimize:' section of SCENARIO "
        "(or a file with 'scenario: <path>') describes: an objective on a metric of an arm "
        "(minimize/maximize '<output>.<metric>') or the least product (total_amount, doses); "
        "decision variables by path (continuous amounts, intervals, times with low/high; "
        "integer counts, product variants and bolus-versus-depot 'choices' enumerated); "
        "constraints on the total amount, the number of doses and metric ceilings or floors. "
        "Each combination of the enumerated variables gets several seeded local searches "
        "(scipy COBYQA by default) in a normalised box; every dose must stay inside the "
        "simulated span. Writes optimization.json, searches.csv, evaluations.csv, best.yaml "
        "(the schedule, ready to paste), comparison.csv (baseline vs best), trajectories.csv "
        "and plots/optimized_vs_baseline.png. Exit 1 when no feasible schedule is found.",
    )
    optimize.add_argument("scenario", type=Path, help="scenario with an optimize: section, or file")
    optimize.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder to create (must not exist or be empty); default "
        "results/<id>/optimize-<timestamp>/",
    )
    optimize.add_argument(
        "--workers",
        type=int,
        metavar="N",
        default=1,
        help="processes for the independent searches (default 1; same answer on any number)",
    )
    optimize.add_argument(
        "--progress",
        choices=["auto", "plain", "none"],
        default="auto",
        help="a line per finished search (auto, plain) or none",
    )
    optimize.add_argument("--no-plot", action="store_true", help="skip plots/")

    export = commands.add_parser(
        "export",
        help="write a scenario's arms as SBML, SED-ML or a COMBINE archive (OMEX)",
        description="Write each arm of SCENARIO as a self-contained SBML model: the arm's "
        "parameters, the engine's helper species and reactions (infusions, depots, output "
        "expressions), every dose and perturbation as an SBML event firing exactly at its time "
        "(t = start included), the pre-equilibrated state as the initial state, and parameter "
        "sources as notes (DOIs as annotations). 'sedml' adds a SED-ML file (time course, "
        "solver settings, outputs in the scenario's units); 'omex' bundles everything, with "
        "the scenario and model sources, in one COMBINE archive. COPASI reproduces every "
        "shipped scenario from these files (tests/test_export.py).",
    )
    export.add_argument("scenario", type=Path, help="scenario YAML file")
    export.add_argument(
        "--format",
        choices=["sbml", "sedml", "omex"],
        default="omex",
        help="sbml: <arm>.xml per arm; sedml: those plus <scenario-id>.sedml; omex (default): "
        "<scenario-id>.omex",
    )
    export.add_argument(
        "--arm",
        action="append",
        metavar="ARM",
        help="export only this arm (repeat for several; default: every arm)",
    )
    export.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder to write into (default results/<scenario-id>/export/); files of the same "
        "name are replaced",
    )

    validate = commands.add_parser(
        "validate",
        help="check a scenario without running it",
        description="Check SCENARIO against the schema and its model; report every problem "
        "with file:line:column, key path, what was expected and what was found. Writes nothing.",
    )
    validate.add_argument("scenario", type=Path, help="scenario YAML file")

    models = commands.add_parser(
        "models",
        help="list models, or show one model's inputs, outputs and parameters",
        description="Without arguments, list registered models. 'models show ID' prints the "
        "model's inputs, outputs and parameter table with units, ranges and sources.",
    )
    models_sub = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    show = models_sub.add_parser("show", help="print one model's interface and parameters")
    show.add_argument("model_id", help="model id (see 'secretome-sim models')")
    return parser


def _execution_options(parser: argparse.ArgumentParser, what: str, default: str, unit: str) -> None:
    """Where a study writes and how its points run (shared by sweep and sensitivity)."""
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"{what} folder (default {default}); with --resume, the folder of the {what} to "
        "continue",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes to use (default: every usable core; 1 runs in this process)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="run on Dask: a scheduler address such as tcp://host:8786, or 'local' for a "
        "local cluster of --workers processes (needs: pip install 'secretome-sim[dask]')",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"continue the {what} in --out, redoing only {unit} that did not finish",
    )
    parser.add_argument(
        "--progress",
        choices=["auto", "bar", "plain", "none"],
        default="auto",
        help="a progress bar on a terminal, plain lines otherwise (auto), or none",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip plots/")


def _check_execution(args: argparse.Namespace, what: str) -> str | None:
    """The problem with --workers/--resume, if any."""
    if args.workers is not None and args.workers < 1:
        return f"--workers must be at least 1, got {args.workers}"
    if args.resume and args.out is None:
        return f"--resume needs --out DIR, the folder of the {what} to continue"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .errors import SecretomeError

    try:
        if args.command == "run":
            return _run(args, argv)
        if args.command == "validate":
            return _validate(args)
        if args.command == "sweep":
            return _sweep(args, argv)
        if args.command == "sensitivity":
            return _sensitivity(args, argv)
        if args.command == "optimize":
            return _optimize(args, argv)
        if args.command == "export":
            return _export(args)
        return _models(args)
    except SecretomeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130


def _search(args: argparse.Namespace) -> list[Path] | None:
    return [Path(args.models_dir)] if args.models_dir else None


def _validate(args: argparse.Namespace) -> int:
    from .loader import load_scenario

    scenario = load_scenario(args.scenario, models_dir=args.models_dir)
    model = scenario.model_definition
    print(
        f"{args.scenario}: ok (model '{model.id}', {len(scenario.arms)} arm"
        f"{'s' if len(scenario.arms) != 1 else ''})"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_scenario

    result = export_scenario(
        args.scenario, format=args.format, arms=args.arm, out=args.out, models_dir=args.models_dir
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for arm in result.export.arms:
        print(f"arm {arm.arm}: initial state: {arm.initial_state}")
    for path in result.paths:
        print(f"wrote {path}")
    return 0


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    from .errors import SimulationError
    from .results import check_run_folder
    from .run import run_scenario

    if args.out is not None:
        check_run_folder(args.out)  # fail before simulating, not after
    command = "secretome-sim " + shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        result = run_scenario(args.scenario, command=command, models_dir=args.models_dir)
    except SimulationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.partial is not None:
            folder = exc.partial.save(args.out, plot=not args.no_plot)
            print(f"kept the arms that completed in {folder}", file=sys.stderr)
        return 1
    folder = result.save(args.out, plot=not args.no_plot)
    if args.quiet:
        print(folder)
        return 0
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    _print_summary(result)
    print(f"\nresults written to {folder}")
    print("note: model predictions from a simplified model, not measurements")
    return 0


def _sweep(args: argparse.Namespace, argv: list[str] | None) -> int:
    from .sweep import default_sweep_folder, run_sweep
    from .sweep_load import load_sweep

    problem = _check_execution(args, "sweep")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    command = "secretome-sim " + shlex.join(argv if argv is not None else sys.argv[1:])
    sweep = load_sweep(args.scenario, models_dir=args.models_dir)
    folder = args.out if args.out is not None else default_sweep_folder(sweep)
    if args.progress != "none":
        print(f"sweep folder: {folder}", file=sys.stderr)
    try:
        result = run_sweep(
            sweep,
            out=folder,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            save_trajectories=args.save_trajectories,
            chunk_size=args.chunk_size,
            progress=args.progress,
            plots=not args.no_plot,
            command=command,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted; finished chunks are saved: rerun with --resume --out {folder}",
            file=sys.stderr,
        )
        return 130
    summary = result.summary
    print(
        f"{sweep.sweep_id}: {summary['points']} points x {len(sweep.arms)} arms, "
        f"{summary['rows_ok']} rows ok, {summary['rows_failed']} failed"
        + (
            f" ({summary['resumed_points']} points resumed from before)"
            if summary["resumed_points"]
            else ""
        )
    )
    for reason in summary["failure_reasons"]:
        print(f"  failed x{reason['count']}: {reason['example']}")
    note = summary.get("dose_response", {})
    if result.fits is not None:
        fits = result.folder / "fits.csv"
        print(f"dose-response fits against '{note['factor']}' ({note['why']}): {fits}")
    print(f"\nresults written to {result.folder}")
    print("note: model predictions from a simplified model, not measurements")
    return 1 if summary["rows_failed"] else 0


def _sensitivity(args: argparse.Namespace, argv: list[str] | None) -> int:
    from .sensitivity import default_folder, run_sensitivity
    from .sensitivity_load import load_sensitivity

    problem = _check_execution(args, "study")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    command = "secretome-sim " + shlex.join(argv if argv is not None else sys.argv[1:])
    study = load_sensitivity(args.scenario, method=args.method, models_dir=args.models_dir)
    folder = args.out if args.out is not None else default_folder(study)
    if args.progress != "none":
        print(
            f"{study.method} sensitivity: {len(study.inputs)} inputs; study folder: {folder}",
            file=sys.stderr,
        )
    try:
        result = run_sensitivity(
            study,
            out=folder,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            progress=args.progress,
            plots=not args.no_plot,
            command=command,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted; finished points are saved: rerun with --resume --out {folder}",
            file=sys.stderr,
        )
        return 130
    print(result.report(top=5))
    print(f"results written to {result.folder} (indices.csv, report.md)")
    return 1 if result.failed else 0


def _optimize(args: argparse.Namespace, argv: list[str] | None) -> int:
    from .optimize import run_optimization

    if args.workers < 1:
        print(f"error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    command = "secretome-sim " + shlex.join(argv if argv is not None else sys.argv[1:])
    result = run_optimization(
        args.scenario,
        out=args.out,
        workers=args.workers,
        progress=args.progress,
        plots=not args.no_plot,
        command=command,
        models_dir=args.models_dir,
    )
    print(result.report())
    print(f"\nresults written to {result.folder}")
    return 0 if result.feasible else 1


def _print_summary(result) -> None:
    table = result.metrics
    final = table[table.metric == "final"]
    if final.empty:
        return
    print(f"{result.scenario.name or result.scenario.scenario_id}: final values")
    pivot = final.pivot(index="output", columns="arm", values="value")[result.arms]
    units = final.drop_duplicates("output").set_index("output")["unit"]
    header = f"  {'output':<24}" + "".join(f"{arm[:14]:>15}" for arm in pivot.columns) + "  unit"
    print(header)
    for output, row in pivot.iterrows():
        values = "".join(f"{value:>15.4g}" for value in row)
        print(f"  {output:<24}{values}  {units.get(output, '')}")


def _models(args: argparse.Namespace) -> int:
    from .models import list_models

    if args.models_command == "show":
        from .describe import describe_model
        from .models import load_model

        print(describe_model(load_model(args.model_id, search=_search(args))))
        return 0
    registered = list_models(_search(args))
    if not registered:
        print("no registered models found (looked in ./models and the package)")
        return 0
    import yaml

    for model_id, meta_path in registered.items():
        with meta_path.open(encoding="utf-8") as handle:
            title = (yaml.safe_load(handle) or {}).get("title", "")
        print(f"{model_id:<24} {title}   ({meta_path})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
