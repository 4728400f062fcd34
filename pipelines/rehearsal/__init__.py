"""A rehearsal of a cloud run: the compiled pipeline's tasks in podman containers, each given what
Vertex AI or Kubeflow gives a task (`ddsp_pipeline rehearse`; pipelines/REHEARSAL.md).

    plan.py            the compiled YAML -> tasks in dependency order (image, command, resources, inputs)
    services.py        what each service gives a task: environment, user, mounts, placeholders, URIs
    executor_input.py  the executor input JSON of a task (kfp.local's builder) and its resolved command
    bucket.py          the storage emulator standing in for the gs:// bucket, and the sync around a task
    podman.py          the `podman run` of a task, with its limits, and the log
    driver_stub.py     a stand-in libcuda.so.1 under /usr/local/nvidia/lib64, and the loader probe
    dataflow_probe.py  the prepare step's Dataflow launch against a stand-in Dataflow endpoint
    driver.py          the whole rehearsal: compile, run task by task, the summary table

Nothing here imports TensorFlow or kfp at import time (`ddsp_pipeline`'s parser imports the CLI).
"""
