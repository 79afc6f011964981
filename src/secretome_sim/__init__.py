"""secretome-sim: mechanistic simulation of stem-cell secretome therapy.

The public API is imported lazily so that ``import secretome_sim`` (and ``secretome-sim --help``)
stays fast; libRoadRunner, pandas and pint load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_scenario": "loader",
    "with_parameters": "loader",
    "run_scenario": "run",
    "RunResult": "results",
    "Scenario": "scenario",
    "load_model": "models",
    "list_models": "models",
    "describe_model": "describe",
    "holds_for": "calibration",
    "run_sweep": "sweep",
    "SweepResult": "sweep",
    "load_sweep": "sweep_load",
    "build_sweep": "sweep_load",
    "load_trajectories": "sweep",
    "fit_hill": "dose_response",
    "run_sensitivity": "sensitivity",
    "SensitivityResult": "sensitivity",
    "load_sensitivity": "sensitivity_load",
    "build_sensitivity": "sensitivity_load",
    "run_optimization": "optimize",
    "OptimizationResult": "optimize",
    "load_optimization": "optimize",
    "build_optimization": "optimize",
    "export_scenario": "export",
    "build_export": "export",
    "SecretomeError": "errors",
    "ScenarioError": "errors",
    "ModelError": "errors",
    "SimulationError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'secretome_sim' has no attribute {name!r}")
