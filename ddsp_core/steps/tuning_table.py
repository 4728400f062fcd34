"""The table of a hyperparameter search's trials, the same for a local tune and a Vertex AI job.

A row is a dict: {'trial': '1', 'status': 'done' | 'failed' | ..., 'values': {parameter id:
value}, 'bindings': [gin text], 'objective': number or None, 'metrics': {eval metric: value},
'error': '' or why it failed, plus where its artifacts are ('model', 'exported', ...)}.
`best_row` picks the best done trial by the search space's goal; `markdown` writes the table.
"""

# The listener metrics shown beside the objective, when the eval step measured them.
LISTENER_METRICS = ("loudness_l1_db", "f0_l1_cents", "f0_outlier_ratio", "spectral_loss")
# Vertex AI's trial states that mean the trial gave its measurement (Trial.State).
_VERTEX_DONE = ("SUCCEEDED",)


def best_row(rows, space):
    """The done row with the best objective for `space.goal` (the first of equals), or None."""
    best = None
    for row in rows:
        if row.get("status") == "done" and row.get("objective") is not None:
            if best is None or space.better(row["objective"], best["objective"]):
                best = row
    return best


def _number(value):
    return "" if value is None else f"{value:.4g}"


def markdown(rows, space, best=None):
    """The trials as a Markdown table: trial, each parameter, the objective, the other listener
    metrics, status (and why a trial failed, below the table). `best` (a row) is starred."""
    others = [name for name in LISTENER_METRICS if name != space.metric
              and any(name in row.get("metrics", {}) for row in rows)]
    header = ["trial", *[parameter.id for parameter in space.parameters], f"{space.metric} ({space.goal})", *others,
              "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        values = row.get("values", {})
        cells = [f"{row['trial']}{' *' if best is not None and row is best else ''}",
                 *[_cell(values.get(parameter.id)) for parameter in space.parameters], _number(row.get("objective")),
                 *[_number(row.get("metrics", {}).get(name)) for name in others], row.get("status", "")]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [row for row in rows if row.get("error")]
    if failed:
        lines.append("")
        lines.extend(f"- trial {row['trial']}: {row['error'].splitlines()[0]}" for row in failed)
    if best is not None:
        lines.append("")
        lines.append(f"Best (*): trial {best['trial']}: {'; '.join(best.get('bindings', []))}")
    return "\n".join(lines) + "\n"


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def rows_from_vertex_job(job, space, base_output_directory=""):
    """Rows of a Vertex AI HyperparameterTuningJob given as a dict (the API's JSON, snake_case keys,
    enums by name): each trial's id, state, parameters and final measurement of the objective.
    'model' is where the trial container wrote its model: <base output directory>/<id>/model."""
    rows = []
    for trial in job.get("trials", []):
        values = {item.get("parameter_id"): item.get("value") for item in trial.get("parameters", [])}
        measured = {item.get("metric_id"): item.get("value")
                    for item in (trial.get("final_measurement") or {}).get("metrics", [])}
        state = str(trial.get("state", ""))
        parameters = {parameter.id: parameter for parameter in space.parameters}
        for parameter_id, value in list(values.items()):
            if parameter_id in parameters and value is not None:
                try:
                    values[parameter_id] = parameters[parameter_id].value_of(value)
                except ValueError:
                    pass
        bindings = [parameters[key].binding_for(value) for key, value in values.items()
                    if key in parameters and value is not None]
        done = state in _VERTEX_DONE and measured.get(space.metric) is not None
        row = {"trial": str(trial.get("id", len(rows) + 1)), "status": "done" if done else state.lower() or "unknown",
               "values": values, "bindings": bindings, "objective": measured.get(space.metric),
               "metrics": measured, "error": "" if done else str(trial.get("infeasible_reason", "")),
               "model": f"{base_output_directory.rstrip('/')}/{trial.get('id')}/model" if base_output_directory
               else ""}
        rows.append(row)
    return rows
