"""Human-readable descriptions of models: what `secretome-sim models show` prints."""

from __future__ import annotations

from .models import ModelDefinition, load_model


def describe_model(model: ModelDefinition | str) -> str:
    """Inputs, outputs and the parameter table with sources, as plain text."""
    if isinstance(model, str):
        model = load_model(model)
    meta = model.meta
    lines = [f"{model.id}: {meta.title if meta else model.path.name}"]
    if meta:
        lines += ["", meta.description.strip(), "", f"time unit: {meta.time_unit}"]
        lines.append(f"status: {meta.status} (simplified model; results are predictions)")
    lines += ["", "inputs (dose targets):"]
    for item in model.inputs.values():
        extra = f", MW {item.molecular_weight:~P}" if item.molecular_weight is not None else ""
        extra += f", volume {item.volume:~P}" if item.volume is not None else ""
        lines.append(
            f"  {item.name:<22} -> {item.kind} {item.target} [{item.unit or 'model units'}]"
            f"{extra}  {item.description}"
        )
    lines += ["", "outputs:"]
    for item in model.outputs.values():
        what = item.expression or item.selection
        lines.append(
            f"  {item.name:<22} = {what} [{item.unit or 'model units'}]  {item.description}"
        )
    lines += ["", "parameters:"]
    header = f"  {'name':<18} {'value':>11}  {'unit':<14} {'range':<24} source"
    lines.append(header)
    for name, item in model.parameters.items():
        if item is None:
            value = model.base.model[name]
            lines.append(f"  {name:<18} {value:>11.4g}  {'?':<14} {'?':<24} (no metadata)")
            continue
        low, high = item.range
        source = item.source + (
            f"  [calibrated: {item.calibrated.claim}]" if item.calibrated else ""
        )
        lines.append(
            f"  {name:<18} {item.value:>11.4g}  {item.unit:<14} "
            f"{f'[{low:.3g}, {high:.3g}]':<24} {source}"
        )
    if meta and meta.simplifications:
        lines += ["", "simplifications:"] + [f"  - {s}" for s in meta.simplifications]
    if meta and meta.references:
        lines += ["", "references:"]
        for ref in meta.references:
            lines.append(f"  [{ref.key}] {ref.citation}" + (f" doi:{ref.doi}" if ref.doi else ""))
    return "\n".join(lines)
