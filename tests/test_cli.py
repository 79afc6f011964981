"""The command line, run in-process through ``secretome_sim.cli.main``.

Scenarios are written into pytest's tmp folders and name the model by absolute path, and every
``run`` gets an explicit ``--out`` under tmp, so no test writes into the source tree. The one
subprocess checks that importing the CLI (and ``--help``) loads no numerical library.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import stat
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from secretome_sim import __version__, cli
from secretome_sim.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
MODEL_META = MODELS / "secretome_delivery.yaml"
MODEL_ANT = MODELS / "secretome_delivery.ant"
FLAGSHIP = ROOT / "scenarios" / "delivery_hydrogel_vs_bolus.yaml"

RUN_FILES = {
    "scenario.yaml",
    "resolved_scenario.yaml",
    "manifest.json",
    "trajectories.csv",
    "metrics.csv",
    "dose_events.csv",
    "trajectories.png",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- helpers
def _sub_once(pattern: str, replacement: str, text: str) -> str:
    new, count = re.subn(pattern, lambda _: replacement, text, flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} matched {count} times in the flagship scenario"
    return new


def small_flagship_text() -> str:
    """The flagship scenario, shortened to 2 days on a 2 h grid, with the model by path."""
    text = FLAGSHIP.read_text(encoding="utf-8")
    text = _sub_once(r"^model: .*$", f"model: {json.dumps(str(MODEL_META))}", text)
    text = _sub_once(r"^  end: .*$", "  end: 2 day", text)
    text = _sub_once(r"^  step: .*$", "  step: 2 h", text)
    return re.sub(r"count: \d+", "count: 2", text)  # repeats must fit in the shorter span


def write(folder: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def leftovers(folder: Path) -> list[str]:
    """Hidden staging folders a run may have left behind."""
    return sorted(p.name for p in folder.rglob("*") if ".partial-" in p.name)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@dataclass
class Invocation:
    code: int
    out: str
    err: str


def invoke(argv: list[str]) -> Invocation:
    """Run the CLI in-process, capturing its output (for module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return Invocation(code, out.getvalue(), err.getvalue())


# A scenario whose third arm makes CVODE fail: a negative clearance makes free VEGF grow as
# exp(50 t), which overflows within the first 2 h segment. The arms before it are ordinary.
FAILING = f"""\
    id: solver_failure
    model: {json.dumps(str(MODEL_META))}
    time: {{end: 2 day, step: 2 h}}
    outputs: [vegf_free, repair_signal]
    arms:
      untreated: {{}}
      bolus:
        doses:
          - {{type: bolus, target: vegf, amount: 5 ng/mL}}
      runaway:
        parameters: {{k_clear_vegf: -50 1/h}}
        doses:
          - {{type: bolus, target: vegf, amount: 5 ng/mL}}
      after: {{}}
"""


# --------------------------------------------------------------------------- help and import
def test_help_lists_the_commands(capsys):
    """`--help` exits 0 and names the run, validate and models commands and the exit codes."""
    with pytest.raises(SystemExit) as caught:
        cli.main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: secretome-sim")
    for command in ("run", "validate", "models"):
        assert re.search(rf"^\s+{command}\s+\S", out, flags=re.MULTILINE), command
    assert "exit codes: 0 ok, 1 simulation failed" in out


def test_no_command_prints_help(capsys):
    """Running `secretome-sim` with no command prints the help and exits 0."""
    assert cli.main([]) == 0
    assert "usage: secretome-sim" in capsys.readouterr().out


def test_version(capsys):
    """`--version` prints the package version."""
    with pytest.raises(SystemExit) as caught:
        cli.main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"secretome-sim {__version__}"


def test_cli_import_and_help_load_no_numerical_library(tmp_path):
    """`import secretome_sim.cli` and `--help` stay instant: no roadrunner/pandas/pint/pydantic."""
    program = textwrap.dedent(
        """
        import contextlib, io, json, sys
        import secretome_sim.cli as cli
        after_import = sorted(sys.modules)
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                cli.main(["--help"])
            except SystemExit as exc:
                code = exc.code
        heavy = ("roadrunner", "antimony", "pandas", "numpy", "scipy", "matplotlib", "pint",
                 "pydantic")
        print(json.dumps({
            "code": code,
            "help": "validate" in out.getvalue(),
            "on_import": [m for m in heavy if m in after_import],
            "on_help": [m for m in heavy if m in sys.modules],
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "help": True, "on_import": [], "on_help": []}


# --------------------------------------------------------------------------- validate
def test_validate_ok(tmp_path, capsys):
    """`validate` on a good scenario exits 0, says ok with model and arm count, writes nothing."""
    path = write(tmp_path, small_flagship_text())
    before = snapshot(tmp_path)
    arms = len(load_scenario(path).arms)
    assert cli.main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{path}: ok (model 'secretome_delivery', {arms} arms)"
    assert captured.err == ""
    assert snapshot(tmp_path) == before


def test_validate_invalid_exits_2_with_located_message(tmp_path, capsys):
    """`validate` on a bad scenario exits 2 and prints file:line, key path and hint on stderr."""
    text = small_flagship_text().replace("reference_arm: bolus", "reference_arm: bolsu")
    path = write(tmp_path, text)
    line = text.splitlines().index("reference_arm: bolsu") + 1
    before = snapshot(tmp_path)
    assert cli.main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: 1 problem in scenario:\n")
    assert f"{path}:{line}:1: reference_arm: unknown arm 'bolsu'" in captured.err
    assert "did you mean 'bolus'?" in captured.err
    assert snapshot(tmp_path) == before


def test_validate_missing_file_exits_2(tmp_path, capsys):
    """`validate` on a path that does not exist exits 2 with 'file not found', no traceback."""
    missing = tmp_path / "missing.yaml"
    assert cli.main(["validate", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: <top level>: file not found" in err
    assert "Traceback" not in err


def test_run_invalid_scenario_writes_nothing(tmp_path, capsys):
    """`run` on an invalid scenario exits 2, reports on stderr, and creates no --out folder."""
    text = small_flagship_text().replace("reference_arm: bolus", "reference_arm: bolsu")
    path = write(tmp_path, text)
    out = tmp_path / "results" / "run1"
    assert cli.main(["run", str(path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "unknown arm 'bolsu'" in captured.err
    assert "results written" not in captured.out
    assert not (tmp_path / "results").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenario.yaml"]


# --------------------------------------------------------------------------- models
def test_models_lists_registered_models(capsys):
    """`models` lists secretome_delivery with its title and metadata path."""
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    (line,) = [row for row in out.splitlines() if row.startswith("secretome_delivery ")]
    assert "Local delivery of a secretome product" in line
    assert "secretome_delivery.yaml" in line


def test_models_show_prints_interface_and_parameter_sources(capsys):
    """`models show` prints inputs, outputs and a parameter table with units, DOIs, 'assumed'."""
    assert cli.main(["models", "show", "secretome_delivery"]) == 0
    out = capsys.readouterr().out
    for section in ("inputs (dose targets):", "outputs:", "parameters:", "references:"):
        assert f"\n{section}\n" in out, section
    assert re.search(r"^  vegf\s+-> species VEGF \[pM\], MW 38.2 kDa", out, re.MULTILINE)
    assert re.search(r"^  vegfr2_occupancy\s+= occupancy \[dimensionless\]", out, re.MULTILINE)
    kon = next(row for row in out.splitlines() if row.lstrip().startswith("kon_vegfr2 "))
    assert "0.036" in kon and "1/pM/hour" in kon and "doi:10.1152/ajpheart.01218.2004" in kon
    uptake = next(row for row in out.splitlines() if row.lstrip().startswith("k_uptake_exo "))
    assert uptake.rstrip().endswith("assumed")
    assert "status: demonstration" in out


def test_models_show_typo_suggests_model(capsys):
    """`models show` with a misspelt id exits 2 with a did-you-mean."""
    assert cli.main(["models", "show", "secretome_delivry"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown model 'secretome_delivry'; did you mean 'secretome_delivery'?" in err


def test_models_show_unknown_lists_registered(capsys):
    """`models show nope` exits 2 and lists the registered models."""
    assert cli.main(["models", "show", "nope"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown model 'nope'" in captured.err
    assert "(registered models: " in captured.err and "secretome_delivery" in captured.err


# --------------------------------------------------------------------------- run
@dataclass
class FlagshipRun:
    root: Path
    scenario_path: Path
    folder: Path
    result: Invocation
    arms: list[str]
    outputs: list[str]
    reference: str


@pytest.fixture(scope="module")
def flagship_run(tmp_path_factory) -> FlagshipRun:
    """The shortened flagship, run once through the CLI for all the run-folder tests."""
    root = tmp_path_factory.mktemp("flagship")
    path = write(root, small_flagship_text())
    scenario = load_scenario(path)
    outputs = [o if isinstance(o, str) else o.name for o in scenario.outputs]
    folder = root / "results" / "run1"
    result = invoke(["run", str(path), "--out", str(folder)])
    return FlagshipRun(
        root, path, folder, result, list(scenario.arms), outputs, scenario.reference_arm
    )


def test_run_exits_0_and_prints_a_summary(flagship_run):
    """`run` exits 0, prints final values per arm and where the results went, no errors."""
    result = flagship_run.result
    assert result.code == 0, result.err
    assert "error" not in result.err
    assert "final values" in result.out
    assert f"results written to {flagship_run.folder}" in result.out
    assert "not measurements" in result.out


def test_run_folder_has_every_file(flagship_run):
    """The run folder holds the scenario, resolved scenario, manifest, three CSVs and a plot."""
    assert {p.name for p in flagship_run.folder.iterdir()} == RUN_FILES


def test_run_folder_keeps_the_scenario_verbatim(flagship_run):
    """scenario.yaml in the run folder is byte-for-byte the file that was run."""
    copied = (flagship_run.folder / "scenario.yaml").read_bytes()
    assert copied == flagship_run.scenario_path.read_bytes()


def test_resolved_scenario_lists_every_arm(flagship_run):
    """resolved_scenario.yaml is plain YAML with every arm, `extends` resolved, and the id."""
    resolved = yaml.safe_load((flagship_run.folder / "resolved_scenario.yaml").read_text())
    assert resolved["id"] == "delivery_hydrogel_vs_bolus"
    assert list(resolved["arms"]) == flagship_run.arms
    assert all(arm["extends"] is None for arm in resolved["arms"].values())
    assert resolved["time"]["end"] == "2 d"


def test_manifest_records_status_versions_and_hashes(flagship_run):
    """manifest.json: status complete, libroadrunner version, SHA-256 of model and scenario."""
    import roadrunner

    manifest = json.loads((flagship_run.folder / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["error"] is None
    assert manifest["secretome_sim_version"] == __version__
    assert manifest["engine"]["libroadrunner"] == roadrunner.__version__
    model = manifest["model"]
    assert model["id"] == "secretome_delivery"
    assert model["sha256"] == hashlib.sha256(MODEL_ANT.read_bytes()).hexdigest()
    assert model["metadata_sha256"] == hashlib.sha256(MODEL_META.read_bytes()).hexdigest()
    scenario_hash = hashlib.sha256(flagship_run.scenario_path.read_bytes()).hexdigest()
    assert manifest["scenario"]["sha256"] == scenario_hash
    assert manifest["command"].startswith("secretome-sim run ")
    assert str(flagship_run.folder) in manifest["command"]
    assert list(manifest["arms"]) == flagship_run.arms
    assert all(arm["completed"] for arm in manifest["arms"].values())


def test_trajectories_csv_is_tidy(flagship_run):
    """trajectories.csv: columns arm,time,output,value,unit; one row per arm x time x output."""
    table = pd.read_csv(flagship_run.folder / "trajectories.csv")
    assert list(table.columns) == ["arm", "time", "output", "value", "unit"]
    times = 25  # 0 to 2 days every 2 h
    assert len(table) == len(flagship_run.arms) * times * len(flagship_run.outputs)
    assert not table.duplicated(["arm", "time", "output"]).any()
    assert list(dict.fromkeys(table["arm"])) == flagship_run.arms
    assert list(dict.fromkeys(table["output"])) == flagship_run.outputs
    grid = sorted(table["time"].unique())
    assert len(grid) == times
    assert grid[0] == 0 and grid[-1] == pytest.approx(2.0)  # reported in days, the unit of end
    assert set(table.loc[table.output == "vegf_free", "unit"]) == {"pg/mL"}
    assert table["value"].notna().all()


def test_metrics_csv_has_changes_versus_reference(flagship_run):
    """metrics.csv has percent_change versus the reference arm, computed from the values."""
    table = pd.read_csv(flagship_run.folder / "metrics.csv")
    assert list(table.columns) == [
        "arm",
        "output",
        "metric",
        "value",
        "unit",
        "reference_value",
        "change",
        "percent_change",
    ]
    assert set(table["arm"]) == set(flagship_run.arms)
    reference = table[(table.arm == flagship_run.reference) & (table.reference_value != 0)]
    assert not reference.empty
    assert (reference["percent_change"].abs() < 1e-9).all()
    gel = table[(table.arm == "hydrogel") & (table.reference_value != 0)]
    assert not gel.empty
    expected = 100 * (gel["value"] - gel["reference_value"]) / gel["reference_value"].abs()
    assert gel["percent_change"].to_numpy() == pytest.approx(expected.to_numpy())


def test_dose_events_csv_lists_every_dose(flagship_run):
    """dose_events.csv lists each applied dose with its time in days and in model hours."""
    table = pd.read_csv(flagship_run.folder / "dose_events.csv")
    assert list(table.columns) == [
        "arm",
        "time",
        "model_time",
        "action",
        "target",
        "value",
        "label",
        "is_dose",
    ]
    # every event is a dose except a depot's burst (marked by the depot fill at the same time)
    assert (table["is_dose"] == (table["label"] != "burst")).all()
    assert "untreated" not in set(table["arm"])
    daily = table[(table.arm == "daily_bolus") & (table.target == "VEGF")]
    assert list(daily["time"]) == pytest.approx([0.0, 1.0])
    assert list(daily["model_time"]) == pytest.approx([0.0, 24.0])


def test_run_folder_plot_is_a_png(flagship_run):
    """trajectories.png is a real, non-empty PNG."""
    data = (flagship_run.folder / "trajectories.png").read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000


def test_run_leaves_no_partial_folder(flagship_run):
    """After a run only the run folder exists: the hidden staging folder was renamed away."""
    assert sorted(p.name for p in flagship_run.folder.parent.iterdir()) == ["run1"]
    assert leftovers(flagship_run.root) == []


def test_run_folder_permissions_follow_the_umask(flagship_run, tmp_path):
    """A run folder is as readable as any folder the user creates (e.g. shared by a group)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    expected = stat.S_IMODE(probe.stat().st_mode)
    if expected == 0o700:
        pytest.skip("the umask itself makes new folders private")
    assert stat.S_IMODE(flagship_run.folder.stat().st_mode) == expected


def test_run_into_empty_existing_folder_quiet_without_plot(tmp_path, capsys):
    """--out may be an existing empty folder; -q prints only the folder; --no-plot skips the PNG."""
    path = write(tmp_path, small_flagship_text())
    out = tmp_path / "empty"
    out.mkdir()
    assert cli.main(["run", str(path), "--out", str(out), "--no-plot", "-q"]) == 0
    assert capsys.readouterr().out == f"{out}\n"
    assert {p.name for p in out.iterdir()} == RUN_FILES - {"trajectories.png"}
    assert leftovers(tmp_path) == []


def _run_into_non_empty(tmp_path: Path) -> tuple[Path, dict[str, bytes], int]:
    path = write(tmp_path, small_flagship_text())
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("an earlier run's notes\n")
    before = snapshot(out)
    code = cli.main(["run", str(path), "--out", str(out), "--no-plot"])
    return out, before, code


def test_run_into_non_empty_folder_does_not_touch_it(tmp_path):
    """`run --out` an existing non-empty folder fails and leaves that folder exactly as it was."""
    out, before, code = _run_into_non_empty(tmp_path)
    assert code != 0
    assert snapshot(out) == before
    assert leftovers(tmp_path) == []


def test_run_into_non_empty_folder_is_a_clean_input_error(tmp_path, capsys):
    """`run --out` an existing non-empty folder exits 2 with a one-line error naming it."""
    out, _, code = _run_into_non_empty(tmp_path)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert str(out) in err and "not empty" in err


def test_interrupt_while_writing_leaves_nothing(tmp_path, capsys, monkeypatch):
    """Ctrl-C while the run folder is written exits 130 and leaves neither folder nor staging."""
    import secretome_sim.plotting

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(secretome_sim.plotting, "plot_trajectories", interrupted)
    path = write(tmp_path, small_flagship_text())
    out = tmp_path / "results" / "run1"
    assert cli.main(["run", str(path), "--out", str(out)]) == 130
    assert "interrupted; nothing was written" in capsys.readouterr().err
    assert not out.exists()
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- solver failure
def test_solver_failure_exits_1_and_keeps_completed_arms(tmp_path, capsys):
    """A CVODE failure exits 1, names the arm, and writes the completed arms (status failed)."""
    path = write(tmp_path, FAILING)
    out = tmp_path / "results" / "failed_run"
    assert cli.main(["run", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert re.search(r"error: arm 'runaway': the solver failed near t = 1\.4\d* hour", err)
    assert "CVODE" in err
    assert f"kept the arms that completed in {out}" in err
    assert {p.name for p in out.iterdir()} == RUN_FILES
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert "arm 'runaway'" in manifest["error"]
    arms = manifest["arms"]
    assert list(arms) == ["untreated", "bolus", "runaway"]  # 'after' never ran
    assert arms["untreated"]["completed"] and arms["bolus"]["completed"]
    assert not arms["runaway"]["completed"] and arms["runaway"]["error"]
    table = pd.read_csv(out / "trajectories.csv")
    done = table[table.arm.isin(["untreated", "bolus"])]
    assert len(done) == 2 * 25 * 2 and done["value"].notna().all()
    assert "after" not in set(table["arm"])
    assert leftovers(tmp_path) == []


def test_solver_max_steps_is_honoured(tmp_path, capsys):
    """`solver: {max_steps: 100}` limits CVODE: a bolus transient at rtol 1e-8 cannot finish."""
    path = write(
        tmp_path,
        f"""\
        model: {json.dumps(str(MODEL_META))}
        time: {{end: 2 day, step: 2 h}}
        solver: {{max_steps: 100}}
        arms:
          untreated: {{}}
          bolus:
            doses:
              - {{type: bolus, target: vegf, amount: 5 ng/mL}}
        """,
    )
    out = tmp_path / "run"
    assert cli.main(["run", str(path), "--out", str(out), "--no-plot"]) == 1
    assert "arm 'bolus'" in capsys.readouterr().err
    assert json.loads((out / "manifest.json").read_text())["status"] == "failed"
