"""The optimizer and compile settings of a training run (gin: Trainer.*)."""

import gin
import keras

JIT_CHOICES = ("auto", True, False)


def default_jit_compile(backend=None):
    """Whether to compile the train step with XLA, by backend (measured, benchmarks/RESULTS.md).

    JAX always traces with jit (its only compiled mode). TensorFlow's XLA made this
    model's GRU train step ~3x slower on CPU (7.2 s vs 2.45 s), so tf.function without
    XLA is used there.
    """
    backend = backend or keras.backend.backend()
    return backend == "jax"


class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """learning_rate * decay_rate ** (step / decay_steps), ramped up linearly over the first
    warmup_steps steps (step 0 trains at learning_rate / warmup_steps)."""

    def __init__(self, learning_rate, decay_steps, decay_rate, warmup_steps):
        self.learning_rate = float(learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        decayed = self.learning_rate * keras.ops.power(self.decay_rate, step / self.decay_steps)
        return decayed * keras.ops.minimum(1.0, (step + 1.0) / max(self.warmup_steps, 1))

    def get_config(self):
        return {"learning_rate": self.learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "warmup_steps": self.warmup_steps}


class Adam(keras.optimizers.Adam):
    """Keras' Adam, clipping by the global norm of the whole step's gradient under tf.distribute.

    With several replicas, Keras 3 clips each replica's part of the gradient (a 1 / replicas
    share of its batch's gradient) and then sums the parts, so the clip acts on a smaller
    norm than on one device and a clipped step differs from it. Here the parts are summed
    first, clipped, and each replica hands on 1 / replicas of the clipped sum (Keras then
    sums them again): the step of one device, at the cost of a second all-reduce of the
    gradients per step. Elsewhere (one device, JAX) it is Keras' Adam.
    """

    def _clip_gradients(self, grads):
        if not (self.global_clipnorm and keras.backend.backend() == "tensorflow"):
            return super()._clip_gradients(grads)
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        if replicas == 1:
            return super()._clip_gradients(grads)
        present = [i for i, grad in enumerate(grads) if grad is not None]
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
        clipped, _ = tf.clip_by_global_norm(summed, self.global_clipnorm)
        shares = list(grads)
        for i, grad in zip(present, clipped):
            shares[i] = grad / replicas
        return shares


@gin.configurable
class Trainer:
    """Builds the optimizer and compiles the model for `fit`.

    Adam with an exponentially decaying learning rate (learning_rate *
    lr_decay_rate ** (step / lr_decay_steps)), optionally ramped up over the first
    warmup_steps, and gradients clipped by their global norm.

    Args:
        learning_rate: Initial learning rate.
        lr_decay_steps: Steps over which the learning rate is multiplied by lr_decay_rate.
        lr_decay_rate: Decay factor per lr_decay_steps.
        grad_clip_norm: Clip gradients to this global norm (None: no clipping).
        checkpoints_to_keep: Newest checkpoints kept in save_dir (each holds the
            weights and Adam's two moments: ~58 MB for the solo-instrument model).
        jit_compile: 'auto' (per backend, see `default_jit_compile`), True or False.
        warmup_steps: Ramp the learning rate up linearly over this many first steps
            (0: none, as magenta). At a high learning rate it keeps the first steps from
            driving the harmonic amplitude to zero, after which the noise synth alone
            imitates the notes (seen in short runs at 1e-3; benchmarks/RESULTS.md).
    """

    def __init__(self, learning_rate=1e-3, lr_decay_steps=10000, lr_decay_rate=0.98, grad_clip_norm=3.0,
                 checkpoints_to_keep=5, jit_compile="auto", warmup_steps=0):
        if jit_compile not in JIT_CHOICES:
            raise ValueError(f"Trainer.jit_compile must be one of {JIT_CHOICES}, got {jit_compile!r}.")
        self.learning_rate = float(learning_rate)
        self.lr_decay_steps = int(lr_decay_steps)
        self.lr_decay_rate = float(lr_decay_rate)
        self.grad_clip_norm = grad_clip_norm
        self.checkpoints_to_keep = int(checkpoints_to_keep)
        self.jit_compile = default_jit_compile() if jit_compile == "auto" else bool(jit_compile)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"Trainer.warmup_steps must be an integer >= 0, got {warmup_steps!r}.")
        self.warmup_steps = warmup_steps

    def schedule(self):
        """The learning-rate schedule: step -> learning rate."""
        if self.warmup_steps:
            return WarmupExponentialDecay(self.learning_rate, self.lr_decay_steps, self.lr_decay_rate,
                                          self.warmup_steps)
        return keras.optimizers.schedules.ExponentialDecay(
            self.learning_rate, decay_steps=self.lr_decay_steps, decay_rate=self.lr_decay_rate)

    def learning_rate_at(self, step):
        """The learning rate used at a step (a Python float), from the optimizer's schedule."""
        return float(keras.ops.convert_to_numpy(self.schedule()(step)))

    def make_optimizer(self):
        return Adam(learning_rate=self.schedule(), global_clipnorm=self.grad_clip_norm)

    def compile(self, model):
        """Compiles `model` with the optimizer; builds the optimizer's variables."""
        model.compile(optimizer=self.make_optimizer(), jit_compile=self.jit_compile)
        model.optimizer.build(model.trainable_variables)
        return model
