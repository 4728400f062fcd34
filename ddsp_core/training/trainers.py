"""The optimizer and compile settings of a training run (gin: Trainer.*)."""

import math

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


SCHEDULES = ("exponential", "cosine")


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate at a step: a linear ramp over the first warmup_steps steps (step 0
    trains at learning_rate / warmup_steps), times a decay, times `scale`.

    decay 'exponential': learning_rate * decay_rate ** (step / decay_steps) (magenta's).
    decay 'cosine': from learning_rate down to final_fraction * learning_rate at total_steps
    along half a cosine, then flat: the run ends on small, averaging steps.
    """

    def __init__(self, learning_rate, warmup_steps=0, decay="exponential", decay_steps=10000, decay_rate=0.98,
                 total_steps=None, final_fraction=0.0, scale=1.0):
        if decay not in SCHEDULES:
            raise ValueError(f"Unknown learning-rate schedule {decay!r}: one of {SCHEDULES}.")
        if decay == "cosine" and not (total_steps and int(total_steps) > 0):
            raise ValueError(f"The cosine schedule needs total_steps > 0 (the run's num_steps), got {total_steps!r}.")
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.total_steps = int(total_steps) if total_steps else None
        self.final_fraction = float(final_fraction)
        self.scale = float(scale)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        if self.decay == "cosine":
            progress = keras.ops.minimum(1.0, step / float(self.total_steps))
            cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
            decayed = self.learning_rate * (self.final_fraction + (1.0 - self.final_fraction) * cosine)
        else:
            decayed = self.learning_rate * keras.ops.power(self.decay_rate, step / self.decay_steps)
        ramp = keras.ops.minimum(1.0, (step + 1.0) / max(self.warmup_steps, 1))
        return decayed * ramp * self.scale

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps, "decay": self.decay,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate, "total_steps": self.total_steps,
                "final_fraction": self.final_fraction, "scale": self.scale}


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

    Adam with a learning-rate schedule (`WarmupSchedule`: magenta's exponential decay, or a
    cosine anneal to the end of the run), optionally ramped up over the first warmup_steps,
    gradients clipped by their global norm, and optionally an exponential moving average
    (EMA) of the weights that checkpoints hand to eval, sample and export.

    Args:
        learning_rate: Initial learning rate.
        lr_decay_steps: Steps over which the learning rate is multiplied by lr_decay_rate
            (lr_schedule 'exponential').
        lr_decay_rate: Decay factor per lr_decay_steps.
        grad_clip_norm: Clip gradients to this global norm (None: no clipping).
        checkpoints_to_keep: Newest checkpoints kept in save_dir (each holds the
            weights and Adam's two moments: ~58 MB for the solo-instrument model).
        jit_compile: 'auto' (per backend, see `default_jit_compile`), True or False.
        warmup_steps: Ramp the learning rate up linearly over this many first steps
            (0: none, as magenta). At a high learning rate it keeps the first steps from
            driving the harmonic amplitude to zero, after which the noise synth alone
            imitates the notes (seen in short runs at 1e-3; benchmarks/RESULTS.md).
        lr_schedule: 'exponential' (magenta's) or 'cosine': anneal to final_lr_fraction x
            learning_rate by the run's last step (train.num_steps).
        final_lr_fraction: The cosine schedule's last learning rate, as a fraction of the first.
        ema_momentum: None (or 0) for none; else the momentum of an exponential moving
            average of the weights (e.g. 0.99: about the last 100 steps). The average is
            what checkpoints store as the model's weights (the raw weights ride in the
            optimizer's state, for resuming), so eval, sample, ddsp_play and ddsp_export
            use it unchanged (`checkpoints.save`).
    """

    def __init__(self, learning_rate=1e-3, lr_decay_steps=10000, lr_decay_rate=0.98, grad_clip_norm=3.0,
                 checkpoints_to_keep=5, jit_compile="auto", warmup_steps=0, lr_schedule="exponential",
                 final_lr_fraction=0.0, ema_momentum=None):
        if jit_compile not in JIT_CHOICES:
            raise ValueError(f"Trainer.jit_compile must be one of {JIT_CHOICES}, got {jit_compile!r}.")
        if lr_schedule not in SCHEDULES:
            raise ValueError(f"Trainer.lr_schedule must be one of {SCHEDULES}, got {lr_schedule!r}.")
        if not 0.0 <= float(final_lr_fraction) <= 1.0:
            raise ValueError(f"Trainer.final_lr_fraction must be in [0, 1], got {final_lr_fraction!r}.")
        if ema_momentum is not None and not 0.0 <= float(ema_momentum) < 1.0:
            raise ValueError(f"Trainer.ema_momentum must be None or in [0, 1), got {ema_momentum!r}.")
        self.learning_rate = float(learning_rate)
        self.lr_decay_steps = int(lr_decay_steps)
        self.lr_decay_rate = float(lr_decay_rate)
        self.grad_clip_norm = grad_clip_norm
        self.checkpoints_to_keep = int(checkpoints_to_keep)
        self.jit_compile = default_jit_compile() if jit_compile == "auto" else bool(jit_compile)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"Trainer.warmup_steps must be an integer >= 0, got {warmup_steps!r}.")
        self.warmup_steps = warmup_steps
        self.lr_schedule = lr_schedule
        self.final_lr_fraction = float(final_lr_fraction)
        self.ema_momentum = float(ema_momentum) if ema_momentum else None
        # Set by `compile` from the run's num_steps (the cosine schedule's end) and by the
        # collapse guard (`lower_learning_rate`).
        self.total_steps = None
        self.lr_scale = 1.0

    @property
    def use_ema(self):
        return self.ema_momentum is not None

    def schedule(self):
        """The learning-rate schedule: step -> learning rate."""
        lr_schedule = self.lr_schedule
        if lr_schedule == "cosine" and not self.total_steps:  # Inference, or a model compiled without a run.
            lr_schedule = "exponential"
        return WarmupSchedule(self.learning_rate, self.warmup_steps, lr_schedule, self.lr_decay_steps,
                              self.lr_decay_rate, self.total_steps, self.final_lr_fraction, self.lr_scale)

    def learning_rate_at(self, step):
        """The learning rate used at a step (a Python float), from the optimizer's schedule."""
        return float(keras.ops.convert_to_numpy(self.schedule()(step)))

    def make_optimizer(self):
        ema = {"use_ema": True, "ema_momentum": self.ema_momentum} if self.use_ema else {}
        return Adam(learning_rate=self.schedule(), global_clipnorm=self.grad_clip_norm, **ema)

    def compile(self, model, total_steps=None):
        """Compiles `model` with the optimizer; builds the optimizer's variables.

        total_steps: the run's num_steps, where the cosine schedule ends (None for inference).
        """
        if total_steps:
            self.total_steps = int(total_steps)
        model.compile(optimizer=self.make_optimizer(), jit_compile=self.jit_compile)
        model.optimizer.build(model.trainable_variables)
        return model

    def lower_learning_rate(self, model, factor):
        """Multiplies the learning rate by `factor` from now on (the collapse guard's retry):
        the optimizer keeps its state (moments, step, average); the train step is traced anew."""
        self.lr_scale *= float(factor)
        model.optimizer.learning_rate = self.schedule()
        model.make_train_function(force=True)
