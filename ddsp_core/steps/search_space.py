"""Hyperparameter search spaces of `ddsp_pipeline tune`: a small YAML file, checked, and the
trials drawn from it.

    objective:
      metric: loudness_l1_db       # a metric of the eval step (metrics.json); the default
      goal: minimize               # minimize (default) or maximize
    trials: 4                      # how many trials in all
    parallel_trials: 2             # Vertex AI: how many at once (locally they run one after another)
    algorithm: random              # random, grid, or bayesian (Vertex AI's default; locally: random)
    parameters:
      learning_rate:               # the parameter's id: Vertex AI passes --learning_rate=VALUE to a trial
        binding: learning_rate     # the gin binding it sets (default: the id): a macro or Configurable.parameter
        type: double               # double, integer, discrete (numbers) or categorical (strings)
        min: 1.0e-4
        max: 3.0e-3
        scale: log                 # linear (default) or log

Every parameter is a gin binding applied after the preset's and the run's own (`--gin-param`),
so any binding can be searched: the learning rate (the macro `learning_rate`), the training
length (`train.num_steps`), the batch (the macro `batch_size`), the gain augmentation's range
(`GainAugmentation.min_db`, `GainAugmentation.max_db`), a schedule (`Trainer.lr_schedule`, a
categorical of 'cosine' and 'exponential'), ... The same module turns a trial's values into
bindings here (`draw_trials`) and in a Vertex AI trial's container (`parse_trial_values`), so
both apply the same text. Only the standard library and PyYAML (to read the file) are needed.
"""

import dataclasses
import itertools
import json
import math
import random
import re

TYPES = ("double", "integer", "discrete", "categorical")
SCALES = ("linear", "log")
GOALS = ("minimize", "maximize")
# Vertex AI's names of the search algorithms (StudySpec.Algorithm); bayesian is its default.
ALGORITHMS = {"random": "RANDOM_SEARCH", "grid": "GRID_SEARCH", "bayesian": "ALGORITHM_UNSPECIFIED"}
DEFAULT_METRIC = "loudness_l1_db"
DEFAULT_TRIALS = 4
# A parameter id becomes a command-line flag of the trial (--ID=VALUE): a plain name.
_PARAMETER_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# A gin binding: 'macro', '%macro', 'Configurable.parameter', 'scope/Configurable.parameter'.
_BINDING = re.compile(r"^%?([A-Za-z_][A-Za-z0-9_.]*/)*[A-Za-z_][A-Za-z0-9_.]*$")
_METRIC = re.compile(r"^[A-Za-z][A-Za-z0-9_./]*$")
_TOP_KEYS = ("objective", "trials", "parallel_trials", "max_failed_trials", "algorithm", "parameters")


class SearchSpaceError(ValueError):
    """A search-space file that cannot be used; the message names the file and the key."""


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One searched hyperparameter: its id, the gin binding it sets, and its range or values."""

    id: str
    binding: str
    type: str
    min: float = None
    max: float = None
    scale: str = "linear"
    values: tuple = ()

    def literal(self, value):
        """`value` as gin text: a float, a whole number, a number of a discrete set (whole when all
        its values are), or a quoted string."""
        if self.type == "double":
            return repr(float(value))
        if self.type == "integer" or (self.type == "discrete" and _all_whole(self.values)):
            return str(int(round(float(value))))
        if self.type == "discrete":
            return repr(float(value))
        return repr(str(value))

    def value_of(self, text):
        """The parameter's value from a trial's command-line text (Vertex AI passes '0.001', '16'
        or '16.0', 'cosine'); SearchSpaceError if it is not one."""
        try:
            if self.type == "categorical":
                value = str(text)
                known = value in self.values
            else:
                value = float(text)
                if self.type == "integer" or (self.type == "discrete" and _all_whole(self.values)):
                    value = int(round(value))
                known = (self.min <= value <= self.max if self.type in ("double", "integer")
                         else any(math.isclose(value, item, rel_tol=1e-9) for item in self.values))
        except ValueError:
            known = False
        if not known:
            allowed = (f"from {self.min:g} to {self.max:g}" if self.type in ("double", "integer")
                       else "one of " + ", ".join(map(str, self.values)))
            raise SearchSpaceError(f"--{self.id}={text}: not a value of parameter {self.id!r} ({allowed}).")
        return value

    def binding_for(self, value):
        """The gin binding text of this parameter at `value`, e.g. 'learning_rate = 0.001'."""
        return f"{self.binding} = {self.literal(value)}"


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A checked search-space file (see the module docstring)."""

    parameters: tuple
    metric: str = DEFAULT_METRIC
    goal: str = "minimize"
    trials: int = DEFAULT_TRIALS
    parallel_trials: int = 1
    max_failed_trials: int = 0
    algorithm: str = "bayesian"
    path: str = dataclasses.field(default="", compare=False)  # The file it was read from ('' : none).

    def better(self, value, than):
        """Whether objective `value` beats `than` (None beats nothing and is beaten by anything)."""
        if value is None:
            return False
        if than is None:
            return True
        return value < than if self.goal == "minimize" else value > than

    def bindings(self, values):
        """[gin binding text] of a trial's {parameter id: value}, in the file's order."""
        return [parameter.binding_for(values[parameter.id]) for parameter in self.parameters]

    def to_dict(self):
        """The space as plain data (JSON): what the trial container gets, and the table records."""
        return {"objective": {"metric": self.metric, "goal": self.goal}, "trials": self.trials,
                "parallel_trials": self.parallel_trials, "max_failed_trials": self.max_failed_trials,
                "algorithm": self.algorithm,
                "parameters": {parameter.id: _parameter_dict(parameter) for parameter in self.parameters}}

    def to_json(self):
        return json.dumps(self.to_dict())  # The parameters keep the file's order.


def _all_whole(values):
    return all(float(value).is_integer() for value in values)


def _parameter_dict(parameter):
    data = {"binding": parameter.binding, "type": parameter.type}
    if parameter.type in ("double", "integer"):
        data.update(min=parameter.min, max=parameter.max, scale=parameter.scale)
    else:
        data["values"] = list(parameter.values)
    return data


def load(path):
    """The SearchSpace of the YAML file at `path`.

    Raises:
        SearchSpaceError: the file cannot be read or parsed, or a key is missing, unknown or
            wrong; the message names the file and the key, and says what to give.
    """
    import yaml

    try:
        with open(path) as file:
            data = yaml.safe_load(file)
    except OSError as error:
        raise SearchSpaceError(f"{path}: cannot read the search-space file ({error.strerror or error}).") from None
    except yaml.YAMLError as error:
        raise SearchSpaceError(f"{path}: not valid YAML ({error}).") from None
    return from_dict(data, path)


def from_json(text):
    """The SearchSpace of `SearchSpace.to_json()` text (the trial container's argument)."""
    return from_dict(json.loads(text), "the search space given to the trial")


def from_dict(data, path=""):
    """The SearchSpace of parsed YAML/JSON `data`; SearchSpaceError naming `path` and the key."""
    where = path or "the search space"

    def fail(key, message):
        raise SearchSpaceError(f"{where}: {key}: {message}")

    if not isinstance(data, dict):
        raise SearchSpaceError(f"{where}: expected a mapping with the keys parameters, objective, trials, ...; "
                               f"found {type(data).__name__}.")
    for key in data:
        if key not in _TOP_KEYS:
            fail(key, f"unknown key; the keys are {', '.join(_TOP_KEYS)}.")
    objective = data.get("objective") or {}
    if not isinstance(objective, dict):
        fail("objective", "give a mapping, e.g. {metric: loudness_l1_db, goal: minimize}.")
    for key in objective:
        if key not in ("metric", "goal"):
            fail(f"objective.{key}", "unknown key; give metric and goal.")
    metric = str(objective.get("metric", DEFAULT_METRIC))
    if not _METRIC.match(metric):
        fail("objective.metric", f"{metric!r} is not a metric name such as loudness_l1_db or f0_l1_cents.")
    goal = str(objective.get("goal", "minimize")).lower()
    if goal not in GOALS:
        fail("objective.goal", f"{goal!r}: give minimize or maximize.")
    algorithm = str(data.get("algorithm", "bayesian")).lower()
    if algorithm not in ALGORITHMS:
        fail("algorithm", f"{algorithm!r}: give one of {', '.join(ALGORITHMS)}.")
    raw_parameters = data.get("parameters")
    if not isinstance(raw_parameters, dict) or not raw_parameters:
        fail("parameters", "give at least one parameter, e.g. learning_rate: {type: double, min: 1e-4, max: 3e-3, "
                           "scale: log}.")
    parameters = tuple(_parameter(key, value, fail) for key, value in raw_parameters.items())
    bindings = [parameter.binding.lstrip("%") for parameter in parameters]
    for parameter in parameters:
        if bindings.count(parameter.binding.lstrip("%")) > 1:
            fail(f"parameters.{parameter.id}.binding", f"{parameter.binding!r} is set by two parameters.")
    if algorithm == "grid":
        for parameter in parameters:
            if parameter.type == "double":
                fail(f"parameters.{parameter.id}.type", "grid search takes integer, discrete or categorical "
                                                        "parameters only: give discrete values instead of a range.")
    grid_size = math.prod(len(_grid_values(parameter)) for parameter in parameters) if algorithm == "grid" else 0
    trials = _count(data, "trials", grid_size or DEFAULT_TRIALS, fail)
    parallel_trials = _count(data, "parallel_trials", 1, fail)
    if parallel_trials > trials:
        fail("parallel_trials", f"{parallel_trials} is more than trials ({trials}).")
    max_failed = _count(data, "max_failed_trials", 0, fail, minimum=0)
    return SearchSpace(parameters=parameters, metric=metric, goal=goal, trials=trials,
                       parallel_trials=parallel_trials, max_failed_trials=max_failed, algorithm=algorithm,
                       path=path)


def _count(data, key, default, fail, minimum=1):
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(key, f"{value!r} is not a whole number of at least {minimum}.")
    return value


def _number(value, key, fail):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail(key, f"{value!r} is not a number.")
    return value


def _parameter(parameter_id, spec, fail):
    """A Parameter of the file's `parameters.<parameter_id>` mapping."""
    key = f"parameters.{parameter_id}"
    if not _PARAMETER_ID.match(str(parameter_id)):
        fail(key, "a parameter id is a plain name (letters, digits, _), e.g. learning_rate: Vertex AI passes it "
                  "to a trial as --ID=VALUE. Put the gin name under binding:.")
    if not isinstance(spec, dict):
        fail(key, "give a mapping with type and min/max or values.")
    allowed = ("binding", "type", "min", "max", "scale", "values")
    for name in spec:
        if name not in allowed:
            fail(f"{key}.{name}", f"unknown key; give {', '.join(allowed)}.")
    binding = str(spec.get("binding", parameter_id)).replace(" ", "")
    if not _BINDING.match(binding):
        fail(f"{key}.binding", f"{binding!r} is not a gin binding such as learning_rate or GainAugmentation.min_db.")
    kind = str(spec.get("type", "")).lower()
    if kind not in TYPES:
        fail(f"{key}.type", f"{spec.get('type')!r}: give one of {', '.join(TYPES)}.")
    if kind in ("double", "integer"):
        for name in ("values",):
            if name in spec:
                fail(f"{key}.{name}", f"a {kind} parameter takes min and max, not values.")
        for name in ("min", "max"):
            if name not in spec:
                fail(f"{key}.{name}", f"missing: a {kind} parameter needs min and max.")
        low, high = _number(spec["min"], f"{key}.min", fail), _number(spec["max"], f"{key}.max", fail)
        if kind == "integer" and not (float(low).is_integer() and float(high).is_integer()):
            fail(f"{key}.min", "an integer parameter's min and max are whole numbers.")
        if not low < high:
            fail(f"{key}.max", f"max ({high}) must be above min ({low}).")
        scale = str(spec.get("scale", "linear")).lower()
        if scale not in SCALES:
            fail(f"{key}.scale", f"{scale!r}: give linear or log.")
        if scale == "log" and low <= 0:
            fail(f"{key}.min", f"a log scale needs min above 0, not {low}.")
        cast = float if kind == "double" else int
        return Parameter(str(parameter_id), binding, kind, min=cast(low), max=cast(high), scale=scale)
    for name in ("min", "max", "scale"):
        if name in spec:
            fail(f"{key}.{name}", f"a {kind} parameter takes values, not {name}.")
    values = spec.get("values")
    if not isinstance(values, list) or not values:
        fail(f"{key}.values", f"give a list of values, e.g. {'[8, 16, 32]' if kind == 'discrete' else '[a, b]'}.")
    if kind == "discrete":
        values = tuple(sorted(_number(value, f"{key}.values", fail) for value in values))
    else:
        values = tuple(str(value) for value in values)
    if len(set(values)) != len(values):
        fail(f"{key}.values", "a value is listed twice.")
    return Parameter(str(parameter_id), binding, kind, values=values)


# ---------------------------------------------------------------------------------------------
# trials


def _draw(parameter, rng):
    """One value of `parameter` drawn with `rng` (uniform on its scale; doubles to 4 digits)."""
    if parameter.type in ("discrete", "categorical"):
        return rng.choice(parameter.values)
    if parameter.scale == "log":
        value = math.exp(rng.uniform(math.log(parameter.min), math.log(parameter.max)))
    else:
        value = rng.uniform(parameter.min, parameter.max)
    if parameter.type == "integer":
        return min(parameter.max, max(parameter.min, int(round(value))))
    return min(parameter.max, max(parameter.min, float(f"{value:.4g}")))


def _grid_values(parameter):
    if parameter.type == "integer":
        return list(range(parameter.min, parameter.max + 1))
    return list(parameter.values)


def draw_trials(space, seed=0):
    """[{parameter id: value}] of the space's trials as this machine runs them, one after another.

    grid: the grid's points in order (the first `trials` of them). random, and bayesian (Vertex
    AI's own algorithm, which needs the service): values drawn with `seed`, the same for the same
    seed, none drawn twice while the space has unused points.
    """
    if space.algorithm == "grid":
        points = itertools.product(*(_grid_values(parameter) for parameter in space.parameters))
        return [dict(zip([parameter.id for parameter in space.parameters], point))
                for point in itertools.islice(points, space.trials)]
    rng = random.Random(seed)
    trials, seen = [], set()
    for _ in range(space.trials):
        for _attempt in range(100):
            values = {parameter.id: _draw(parameter, rng) for parameter in space.parameters}
            key = tuple(sorted(space.bindings(values)))
            if key not in seen:
                break
        seen.add(key)
        trials.append(values)
    return trials


def parse_trial_values(space, arguments):
    """({parameter id: value}, the other arguments) of a trial's command line, where Vertex AI
    appended each parameter as --ID=VALUE (or --ID VALUE).

    Raises:
        SearchSpaceError: a parameter of the space is missing or has a value outside it.
    """
    by_id = {parameter.id: parameter for parameter in space.parameters}
    values, rest = {}, []
    arguments = list(arguments)
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        name, sign, text = argument[2:].partition("=") if argument.startswith("--") else ("", "", "")
        if name in by_id:
            if not sign:
                if index + 1 >= len(arguments):
                    raise SearchSpaceError(f"--{name}: no value given.")
                index += 1
                text = arguments[index]
            values[name] = by_id[name].value_of(text)
        else:
            rest.append(argument)
        index += 1
    missing = [f"--{parameter_id}" for parameter_id in by_id if parameter_id not in values]
    if missing:
        raise SearchSpaceError(f"The trial was given no {', '.join(missing)}: Vertex AI passes each parameter of "
                               "the search space as --ID=VALUE.")
    return values, rest


def vertex_study_spec(space):
    """(metrics, parameters, algorithm) of the space for Vertex AI's hyperparameter tuning job:
    lists of StudySpec MetricSpec and ParameterSpec dicts (google_cloud_pipeline_components'
    serialize_metrics / serialize_parameters) and the algorithm's name."""
    from google.cloud.aiplatform import hyperparameter_tuning as hpt
    from google_cloud_pipeline_components.v1.hyperparameter_tuning_job import serialize_metrics, serialize_parameters

    specs = {}
    for parameter in space.parameters:
        if parameter.type == "double":
            specs[parameter.id] = hpt.DoubleParameterSpec(min=parameter.min, max=parameter.max, scale=parameter.scale)
        elif parameter.type == "integer":
            specs[parameter.id] = hpt.IntegerParameterSpec(min=parameter.min, max=parameter.max,
                                                           scale=parameter.scale)
        elif parameter.type == "discrete":
            specs[parameter.id] = hpt.DiscreteParameterSpec(values=list(parameter.values), scale="linear")
        else:
            specs[parameter.id] = hpt.CategoricalParameterSpec(values=list(parameter.values))
    return (serialize_metrics({space.metric: space.goal}), serialize_parameters(specs),
            ALGORITHMS[space.algorithm])
