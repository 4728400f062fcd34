r"""`ddsp_pipeline tune`: a hyperparameter search over the clarinet pipeline's training.

    ddsp_pipeline tune --search-space pipelines/search_spaces/learning_rate.yaml          # here
    ddsp_pipeline tune --search-space S.yaml --num-steps 300 --pipeline-root out/pipeline
    ddsp_pipeline tune --search-space S.yaml --vertex --compile-only --output tune.yaml   # Vertex AI
    ddsp_pipeline tune --search-space S.yaml --vertex --project P --region us-central1 \
        --pipeline-root gs://B/runs --image REGISTRY/ddsp-pipeline:0.1.0 --audio 'gs://B/audio/*.wav'

The search-space file (ddsp_core/steps/search_space.py) names the objective (an eval
metric, loudness_l1_db by default), the number of trials and the gin bindings searched.

Here, the trials run one after another, each the whole clarinet pipeline (`pipelines.local.run`)
with its bindings added after --gin-param; kfp's cache prepares the data once for all of them,
and a rerun of the same tune reuses the trials already done. Every trial trains with the same
seed (--seed, default 1), so the trials differ by their hyperparameters only. It writes
<pipeline root>/tune/trials.json and trials.md (trial, values, objective, the other listener
metrics, status; a failed trial is a row with its error) and copies the best trial's exported
model to <pipeline root>/tune/best/ (with best/trial.json saying which).

On Vertex AI (--vertex), the same file becomes a hyperparameter tuning job (parallel trials on
the train step's machine, Vertex AI's search algorithm) inside a pipeline that prepares the data
first and exports the best trial's model (pipelines/tuning_pipeline.py).

Exit status: 0 done (at least one trial measured the objective), 1 every trial failed or the
submission failed, 2 bad command line or search-space file, 130 stopped by Ctrl-C.
"""

import json
import os
import shutil
import sys
import uuid

DEFAULT_TUNE_SEED = 1
TUNE_FOLDER = "tune"
DEFAULT_VERTEX_OUTPUT = "ddsp-clarinet-tune.yaml"


def add_arguments(parser):
    """Registers the flags of `ddsp_pipeline tune` on `parser`."""
    from pipelines import pipeline_flags, settings_flags

    parser.add_argument("--search-space", required=True, metavar="FILE",
                        help="The search-space YAML file: objective, trials, parameters (gin bindings), e.g. "
                             "pipelines/search_spaces/learning_rate.yaml.")
    pipeline_flags.add_arguments(parser)
    here = parser.add_argument_group("where it runs")
    here.add_argument("--pipeline-root", default=None,
                      help="Here: the folder of the trials' artifacts, kfp's cache and tune/ (default: "
                           "out/pipeline). Vertex AI: the gs:// pipeline root (required to submit).")
    here.add_argument("--verbose", action="store_true", help="Here: log every training step of every trial.")
    here.add_argument("--vertex", action="store_true",
                      help="A Vertex AI hyperparameter tuning job instead of trials here: compile it and submit it.")
    here.add_argument("--compile-only", action="store_true", help="Vertex AI: write the YAML, do not submit.")
    here.add_argument("--output", default=None,
                      help=f"Vertex AI: where the YAML goes (default: {DEFAULT_VERTEX_OUTPUT}).")
    here.add_argument("--project", default=None, help="Vertex AI: Google Cloud project (to submit).")
    here.add_argument("--region", default=None, help="Vertex AI: region of the pipeline and the tuning job.")
    here.add_argument("--service-account", default=None,
                      help="Vertex AI: the service account the pipeline and the trials run as.")
    settings_flags.add_arguments(parser, with_target=False)


# ---------------------------------------------------------------------------------------------
# here: trials one after another


def _write_atomically(path, text):
    with open(path + ".tmp", "w") as file:
        file.write(text)
    os.replace(path + ".tmp", path)


def write_table(tune_dir, space, rows, best, seed):
    """Writes trials.json and trials.md into `tune_dir`; returns their paths."""
    from ddsp_core.steps import tuning_table

    os.makedirs(tune_dir, exist_ok=True)
    record = {"search_space": {"path": space.path, **space.to_dict()}, "seed": seed, "trials": rows,
              "best": best["trial"] if best else None}
    json_path, markdown_path = os.path.join(tune_dir, "trials.json"), os.path.join(tune_dir, "trials.md")
    _write_atomically(json_path, json.dumps(record, indent=1, default=str))
    _write_atomically(markdown_path, tuning_table.markdown(rows, space, best))
    return json_path, markdown_path


def publish_best(exported_dir, best_dir, record):
    """Copies the best trial's export folder to `best_dir`, with trial.json = `record`.

    The copy is made in a new folder beside best_dir and renamed into place, so best_dir is
    never half-written: it is the earlier best until the new one is complete.
    """
    parent = os.path.dirname(os.path.abspath(best_dir))
    staging = os.path.join(parent, f".best-{uuid.uuid4().hex}")
    shutil.copytree(exported_dir, staging)
    with open(os.path.join(staging, "trial.json"), "w") as file:
        json.dump(record, file, indent=1, default=str)
    previous = None
    if os.path.exists(best_dir):
        previous = os.path.join(parent, f".best-old-{uuid.uuid4().hex}")
        os.rename(best_dir, previous)
    os.rename(staging, best_dir)
    if previous:
        shutil.rmtree(previous, ignore_errors=True)
    return best_dir


def check_bindings(space, values, preset="quick", gin_files=(), gin_params=(), sample_rate=0):
    """Parses the train step's gin with one trial's bindings, so that a misspelt binding of the
    search space stops the tune before any trial runs.

    Raises:
        ValueError: the bindings do not parse (gin's message names the binding).
    """
    from ddsp_core.steps import presets, steps
    from ddsp_core.training import gin_configs

    preset = presets.get_preset(preset, sample_rate)
    try:
        gin_configs.parse_gin(list(gin_files), [*gin_params, *space.bindings(values)],
                              base_files=steps.train_gin_files(preset), base_params=preset.gin_params)
    except Exception as error:  # GinConfigError, or gin's own for an unknown configurable.
        raise ValueError(f"{space.path or 'the search space'}: its bindings do not parse with the "
                         f"'{preset.name}' preset: {error}") from None
    finally:
        import gin

        gin.clear_config()


def _trial_row(number, space, values):
    return {"trial": str(number), "status": "running", "values": values, "bindings": space.bindings(values),
            "objective": None, "metrics": {}, "error": ""}


def tune_locally(space, pipeline_root, seed=DEFAULT_TUNE_SEED, gin_params=(), output=None, **run_arguments):
    """Runs the space's trials one after another through the local pipeline; returns
    {'rows', 'best', 'table', 'markdown', 'best_dir'}.

    run_arguments: the other keyword arguments of `pipelines.local.run` (audio, preset,
    num_steps, ...), the same for every trial; each trial adds its bindings after gin_params.

    Raises:
        local.PipelineRunError: bad input (exit_status 2) before a trial ran, or Ctrl-C (130);
            the table of the trials so far is written first.
    """
    from ddsp_core.steps import search_space as search_space_lib
    from ddsp_core.steps import tuning_table

    from pipelines import local

    root = local.check_pipeline_root(pipeline_root)
    tune_dir = os.path.join(root, TUNE_FOLDER)
    trials = search_space_lib.draw_trials(space, seed)
    if space.algorithm == "bayesian":
        print("tune: Vertex AI's Bayesian search needs the service; here the trials are drawn at random (seed "
              f"{seed}).", file=sys.stderr)
    rows = []
    for number, values in enumerate(trials, 1):
        row = _trial_row(number, space, values)
        rows.append(row)
        print(f"==> trial {number}/{len(trials)}: {'; '.join(row['bindings'])}", file=sys.stderr, flush=True)
        try:
            result = local.run(**run_arguments, gin_params=[*gin_params, *row["bindings"]], seed=seed,
                               pipeline_root=root, output=output)
        except local.PipelineRunError as error:
            if error.exit_status == 130:  # Ctrl-C: the table so far, then stop.
                row.update(status="interrupted", error=str(error))
                write_table(tune_dir, space, rows, tuning_table.best_row(rows, space), seed)
                raise
            if error.exit_status == 2:  # Bad input (no audio, ...): every trial would fail alike.
                rows.pop()
                write_table(tune_dir, space, rows, tuning_table.best_row(rows, space), seed)
                raise
            row.update(status="failed", error=str(error))
        else:
            measured = {name: value for name, value in result.metrics.items() if isinstance(value, (int, float))}
            objective = measured.get(space.metric)
            row.update(status="done" if objective is not None else "failed", objective=objective, metrics=measured,
                       run_name=result.run_name, dataset=result.artifacts.get("dataset"),
                       model=result.artifacts.get("model"),
                       page=result.artifacts.get("page"), exported=result.artifacts.get("exported"))
            if objective is None:
                row["error"] = (f"the eval step measured no {space.metric!r} (it measured "
                                f"{', '.join(sorted(measured))})")
        print(f"<== trial {number}/{len(trials)}: {row['status']}"
              + (f", {space.metric} = {row['objective']:.4g}" if row["objective"] is not None else ""),
              file=sys.stderr, flush=True)
        write_table(tune_dir, space, rows, tuning_table.best_row(rows, space), seed)
    best = tuning_table.best_row(rows, space)
    table, markdown_path = write_table(tune_dir, space, rows, best, seed)
    best_dir = None
    if best is not None and best.get("exported"):
        best_dir = publish_best(best["exported"], os.path.join(tune_dir, "best"),
                                {key: best.get(key) for key in ("trial", "values", "bindings", "objective",
                                                                "metrics", "run_name", "model", "exported")})
    return {"rows": rows, "best": best, "table": table, "markdown": markdown_path, "best_dir": best_dir}


def _local_run_arguments(args):
    """local.run's keyword arguments of the flags given (its defaults for the others)."""
    given = {name: value for name, value in (("audio", args.audio), ("preset", args.preset),
                                             ("num_steps", args.num_steps), ("batch_size", args.batch_size),
                                             ("crepe_capacity", args.crepe_capacity),
                                             ("sample_rate", args.sample_rate)) if value is not None}
    return {**given, "eval_audio": args.eval_audio, "gin_files": args.gin_file, "beam_options": args.beam_options,
            "use_cache": not args.no_cache, "verbose": args.verbose, "resume": not args.no_resume}


def _local_main(args, space):
    from ddsp_core.steps import search_space as search_space_lib
    from ddsp_core.steps import tuning_table

    from pipelines import local

    seed = DEFAULT_TUNE_SEED if args.seed is None else args.seed
    try:
        check_bindings(space, search_space_lib.draw_trials(space, seed)[0], args.preset or "quick", args.gin_file,
                       args.gin_param, args.sample_rate or 0)
        done = tune_locally(space, args.pipeline_root or local.DEFAULT_PIPELINE_ROOT, seed=seed,
                            gin_params=args.gin_param, **_local_run_arguments(args))
    except ValueError as error:
        print(f"ddsp_pipeline tune: error: {error}", file=sys.stderr)
        return 2
    except local.PipelineRunError as error:
        print(f"ddsp_pipeline tune: {'' if error.exit_status == 130 else 'error: '}{error}", file=sys.stderr)
        return error.exit_status
    print()
    print(tuning_table.markdown(done["rows"], space, done["best"]), end="")
    print(f"Trials: {done['table']} and {done['markdown']}")
    if done["best_dir"]:
        print(f"Best trial's exported model: {done['best_dir']}\n"
              f"Play it: ddsp_play --model {done['best_dir']} --output melody.wav")
        return 0
    print("No trial measured the objective: see the errors above.", file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------------------------
# Vertex AI: a hyperparameter tuning job


def _vertex_parameter_values(args):
    """The tuning pipeline's parameter values of the flags given (the compiled defaults for the others)."""
    from pipelines.pipeline_flags import eval_audio_parameter

    values = {name: value for name, value in (
        ("audio_pattern", args.audio), ("eval_audio_pattern", eval_audio_parameter(args.audio, args.eval_audio)),
        ("preset", args.preset),
        ("num_steps", args.num_steps), ("batch_size", args.batch_size), ("crepe_capacity", args.crepe_capacity),
        ("sample_rate", args.sample_rate)) if value is not None}
    values.update(gin_files=list(args.gin_file), gin_params=list(args.gin_param),
                  beam_pipeline_options=list(args.beam_options),
                  seed=DEFAULT_TUNE_SEED if args.seed is None else args.seed,
                  pipeline_root=args.pipeline_root or "", service_account=args.service_account or "",
                  location=args.region or "us-central1")
    return values


def _vertex_main(args, space):
    from pipelines import settings_flags
    from pipelines.clarinet import SettingsError

    try:
        settings = settings_flags.settings_from(args, target="vertex")
        from pipelines.tuning_pipeline import compile_tuning_pipeline

        path = compile_tuning_pipeline(args.output or DEFAULT_VERTEX_OUTPUT, space, settings)
    except (SettingsError, ValueError) as error:
        print(f"ddsp_pipeline tune: error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {path}: {space.trials} trials ({space.parallel_trials} at a time, {space.algorithm}) of "
          f"{', '.join(parameter.id for parameter in space.parameters)}, {space.goal} {space.metric}; trials on "
          f"{settings.image}.")
    if args.compile_only:
        return 0
    missing = [flag for flag, value in (("--project", args.project), ("--region", args.region),
                                        ("--pipeline-root", args.pipeline_root)) if not value]
    if missing:
        print(f"ddsp_pipeline tune: error: submitting to Vertex AI needs {', '.join(missing)} (or --compile-only).",
              file=sys.stderr)
        return 2
    local_inputs = [flag for flag, value in (("--audio", args.audio), ("--eval-audio", args.eval_audio))
                    if value and "://" not in value]
    if not args.pipeline_root.startswith("gs://") or local_inputs:
        print("ddsp_pipeline tune: error: on Vertex AI the pipeline root and the audio are in Cloud Storage: give "
              f"--pipeline-root gs://BUCKET/... and gs:// audio ({', '.join(local_inputs) or 'the root'} is local; "
              "`ddsp_pipeline submit` uploads local audio, or copy it with gcloud storage cp).", file=sys.stderr)
        return 2
    from pipelines import submit
    from pipelines.submit_errors import SubmitError
    from pipelines.vertex import submit_vertex

    try:
        for image, where in ((settings.image, "--image"), (settings.cpu_image, "--cpu-image")):
            submit.check_pullable_image(image, where)
        for gin_file in args.gin_file:
            submit.check_gin_file(gin_file)
        submit_vertex(path, args.project, args.region, args.pipeline_root, _vertex_parameter_values(args),
                      display_name="ddsp-clarinet-tune", service_account=args.service_account,
                      enable_caching=not args.no_cache)
    except SubmitError as error:
        print(f"ddsp_pipeline tune: error: {error}", file=sys.stderr)
        return getattr(error, "exit_status", 1)
    return 0


def main(args):
    """Runs `ddsp_pipeline tune` for parsed `args`; returns the exit status."""
    from ddsp_core.steps import search_space as search_space_lib

    from pipelines import pipeline_flags

    try:
        space = search_space_lib.load(args.search_space)
        pipeline_flags.check(args)
    except ValueError as error:  # SearchSpaceError too.
        print(f"ddsp_pipeline tune: error: {error}", file=sys.stderr)
        return 2
    if args.vertex:
        return _vertex_main(args, space)
    if args.compile_only or args.output or args.project or args.region:
        print("ddsp_pipeline tune: error: --compile-only, --output, --project and --region are for --vertex.",
              file=sys.stderr)
        return 2
    return _local_main(args, space)
