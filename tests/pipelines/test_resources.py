"""Each step's CPU and memory in the compiled pipeline (pipelines/clarinet.py DEFAULT_RESOURCES,
`--resources`): on Kubeflow a request below each limit, so that the pods schedule on a node of
the usual size; on Vertex AI the limits alone, which size the machine.

Kubernetes schedules a pod by its requests, and a container with limits only gets requests equal
to its limits. The node checked against is a GKE g2-standard-8 (8 vCPU, 32 GiB, one L4), whose
allocatable share follows GKE's documented reservation (CPU: 6% of the first core, 1% of the
next, 0.5% of the next 2, 0.25% above 4; memory: 25% of the first 4 GiB, 20% of the next 4, 10%
of the next 8, 6% of the next 112, plus a 100 MiB eviction threshold). Compiled only."""

import pytest
import yaml

from pipelines import cli, clarinet, settings_flags

GIB = 2**30
NODE_CPU = 8 - (0.06 + 0.01 + 2 * 0.005 + 4 * 0.0025)
NODE_MEMORY = 32 * GIB - (0.25 * 4 + 0.2 * 4 + 0.1 * 8 + 0.06 * 16) * GIB - 100 * 2**20
TASKS = {"prepare-tfrecord": "prepare_tfrecord", "train": "train", "eval": "eval", "sample": "sample",
         "export": "export"}


def _compile(path, *flags):
    assert cli.main(["compile", "--output", str(path), *flags]) == 0
    return yaml.safe_load(path.read_text())


def _resources(spec):
    """{task: (cpu request, cpu limit, memory request, memory limit)} in cores and bytes, a missing
    request being its limit (as Kubernetes makes it)."""
    found = {}
    for task in TASKS:
        resources = spec["deploymentSpec"]["executors"][f"exec-{task}"]["container"]["resources"]
        cpu_limit = clarinet.cpu_cores(resources["resourceCpuLimit"])
        memory_limit = clarinet.memory_bytes(resources["resourceMemoryLimit"])
        cpu_request = clarinet.cpu_cores(resources.get("resourceCpuRequest", resources["resourceCpuLimit"]))
        memory_request = clarinet.memory_bytes(resources.get("resourceMemoryRequest",
                                                             resources["resourceMemoryLimit"]))
        found[task] = (cpu_request, cpu_limit, memory_request, memory_limit)
    return found


@pytest.fixture(scope="module")
def kubeflow(tmp_path_factory):
    return _compile(tmp_path_factory.mktemp("k") / "k.yaml", "--target", "kubeflow")


def test_kubeflow_pods_request_less_than_their_limits_and_fit_a_g2_standard_8(kubeflow):
    """Defect 3: train asked for 8 CPUs and 32G (its limits), more than the node can give: Pending."""
    found = _resources(kubeflow)
    for task, (cpu_request, cpu_limit, memory_request, memory_limit) in found.items():
        assert cpu_request < cpu_limit and memory_request < memory_limit, task
        assert cpu_request <= NODE_CPU and memory_request <= NODE_MEMORY, task
        assert cpu_limit <= 8 and memory_limit <= 32 * GIB, task
    # Train, on the GPU node, may use all it can have there.
    assert found["train"][1] <= NODE_CPU and found["train"][3] <= NODE_MEMORY
    # Eval, sample and export run at once: together they fit one such node too.
    assert sum(found[task][0] for task in ("eval", "sample", "export")) <= NODE_CPU
    assert sum(found[task][2] for task in ("eval", "sample", "export")) <= NODE_MEMORY
    assert kubeflow["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]["resourceCpuRequest"] \
        == clarinet.DEFAULT_RESOURCES["train"].cpu_request


def test_vertex_gets_the_limits_only(tmp_path):
    spec = _compile(tmp_path / "v.yaml")
    for task, step in TASKS.items():
        resources = spec["deploymentSpec"]["executors"][f"exec-{task}"]["container"]["resources"]
        assert "resourceCpuRequest" not in resources and "resourceMemoryRequest" not in resources, task
        default = clarinet.DEFAULT_RESOURCES[step]
        assert (resources["resourceCpuLimit"], resources["resourceMemoryLimit"]) == (default.cpu_limit,
                                                                                     default.memory_limit)


def test_resources_flags_set_a_steps_requests_and_limits(tmp_path):
    spec = _compile(tmp_path / "k.yaml", "--target", "kubeflow", "--resources", "train=cpu:6/15,memory:40G/56Gi",
                    "--resources", "eval=memory:2G", "--resources", "eval=cpu:500m/1")
    executors = spec["deploymentSpec"]["executors"]
    train = executors["exec-train"]["container"]["resources"]
    assert (train["resourceCpuRequest"], train["resourceCpuLimit"], train["resourceMemoryRequest"],
            train["resourceMemoryLimit"]) == ("6", "15", "40G", "56Gi")
    evaluation = executors["exec-eval"]["container"]["resources"]
    # 'memory:2G' is request and limit; the later item keeps it and sets the CPU.
    assert (evaluation["resourceCpuRequest"], evaluation["resourceCpuLimit"], evaluation["resourceMemoryRequest"],
            evaluation["resourceMemoryLimit"]) == ("500m", "1", "2G", "2G")
    sample = executors["exec-sample"]["container"]["resources"]
    assert sample["resourceCpuRequest"] == clarinet.DEFAULT_RESOURCES["sample"].cpu_request


@pytest.mark.parametrize("item, expected", [
    ("train=cpu:8/4", "The train step's cpu request 8 must be above 0 and at most its limit 4"),
    ("export=memory:32G/16Gi", "The export step's memory request 32G must be above 0 and at most its limit 16Gi"),
    ("eval=cpu:0/2", "The eval step's cpu request 0 must be above 0"),
    ("prepare=cpu:2/4", "--resources 'prepare=cpu:2/4' is not STEP=cpu:REQUEST/LIMIT"),
    ("train", "is not STEP=cpu:REQUEST/LIMIT,memory:REQUEST/LIMIT (STEP one of prepare_tfrecord, train"),
    ("train=gpu:1", "is not STEP=cpu:REQUEST/LIMIT"),
    ("train=cpu:four", "CPU 'four' is not a number of cores"),
    ("train=memory:1.5G/2G", "Memory '1.5G' is not a whole number with a unit"),
])
def test_resources_that_cannot_work_exit_2_saying_what_to_give(tmp_path, capsys, item, expected):
    assert cli.main(["compile", "--output", str(tmp_path / "x.yaml"), "--resources", item]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_settings_check_resources_given_directly():
    with pytest.raises(clarinet.SettingsError, match=r"No step 'prepare'"):
        clarinet.PipelineSettings(resources=(("prepare", clarinet.DEFAULT_RESOURCES["train"]),))
    bad = clarinet.StepResources(cpu_request="4", cpu_limit="2", memory_request="1G", memory_limit="2G")
    with pytest.raises(clarinet.SettingsError, match=r"The train step's cpu request 4"):
        clarinet.PipelineSettings(resources=(("train", bad),))


@pytest.mark.parametrize("quantity, cores", [("4", 4.0), ("0.5", 0.5), ("500m", 0.5), (".25", 0.25)])
def test_cpu_quantities(quantity, cores):
    assert clarinet.cpu_cores(quantity) == cores


@pytest.mark.parametrize("quantity, size", [("16G", 16 * 10**9), ("512Mi", 512 * 2**20), ("1024", 1024),
                                            ("2Ti", 2 * 2**40)])
def test_memory_quantities(quantity, size):
    assert clarinet.memory_bytes(quantity) == size


def test_the_help_says_the_defaults():
    text = "; ".join(f"{step} {resources.describe()}" for step, resources in clarinet.DEFAULT_RESOURCES.items()
                     if step in ("prepare_tfrecord", "train"))
    assert settings_flags.DEFAULT_RESOURCES_TEXT.startswith(text)
    others = {clarinet.DEFAULT_RESOURCES[step] for step in ("eval", "sample", "export")}
    assert len(others) == 1
    assert settings_flags.DEFAULT_RESOURCES_TEXT.endswith(f"eval, sample and export {others.pop().describe()} each")
