"""One seed for a whole training run: the one place that derives every other seed from it.

A run's seed (`train.seed`, `ddsp_run --seed`, `ddsp_pipeline run --seed`) decides the
model's initial weights, the order of the data, the gain augmentation's draws and the noise
synth's noise. Each gets its own stream, derived from (seed, purpose, attempt) through
NumPy's SeedSequence, so that changing one purpose's use of randomness does not move the
others, and so that the collapse guard's retries (`attempt` 1, 2, ...) draw new data and
noise from the same run seed: a retried run is still repeatable.

Same seed, same machine and backend: the same loss curve, within float round-off
(tests/training/test_seeding.py).
"""

import logging
import secrets

import numpy as np

PURPOSES = ("weights", "data", "augmentation", "noise")
# Seeds are drawn and derived below 2**31: every consumer (tf.data, tf.random, Keras' SeedGenerator) takes them.
SEED_LIMIT = 2 ** 31


def check_seed(seed, name="seed"):
    """Returns seed as an int in [0, 2**31); ValueError naming `name` otherwise (None passes through)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < SEED_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2**31) or None, got {seed!r}.")
    return int(seed)


def draw():
    """A fresh seed for a run given none (logged by the caller so the run can be repeated)."""
    return secrets.randbelow(SEED_LIMIT)


def derive(seed, purpose, attempt=0):
    """The seed of one purpose (one of PURPOSES) of run `seed`, at the guard's `attempt`."""
    if purpose not in PURPOSES:
        raise ValueError(f"Unknown seed purpose {purpose!r}: one of {PURPOSES}.")
    entropy = [check_seed(seed), PURPOSES.index(purpose), int(attempt)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0] % SEED_LIMIT)


def seed_weights(seed):
    """Seeds Keras' (and Python's, NumPy's, the backend's) global generators for the weights."""
    import keras

    keras.utils.set_random_seed(derive(seed, "weights"))


def seed_data(data_provider, augmentation, seed, attempt=0):
    """Gives the data provider and the augmentation their streams (`attempt`: the guard's retry)."""
    if hasattr(data_provider, "seed"):
        data_provider.seed = derive(seed, "data", attempt)
    if augmentation is not None and hasattr(augmentation, "reseed"):
        augmentation.reseed(derive(seed, "augmentation", attempt))


def noise_states(model):
    """The state variables of the model's Keras SeedGenerators (the noise synths'), in variable order."""
    return [variable for variable in model.variables if variable.name == "seed_generator_state"]


def seed_noise(model, seed, attempt=0):
    """Sets the state of every noise synth's generator from the run seed (after the model is built)."""
    import keras

    for index, state in enumerate(noise_states(model)):
        stream = (derive(seed, "noise", attempt) + index) % SEED_LIMIT
        state.assign(keras.ops.convert_to_tensor([stream, 0], state.dtype))


def resolve(seed, recorded=None):
    """The run's seed: `seed` when given, else the one a resumed run recorded, else a drawn one.

    Returns (seed, how) with how in {'given', 'resumed', 'drawn'}; logs it.
    """
    seed = check_seed(seed, "train.seed")
    if seed is not None:
        how = "given"
    elif recorded is not None:
        seed, how = check_seed(recorded, "the seed in train_state.json"), "resumed"
    else:
        seed, how = draw(), "drawn"
    if how == "drawn":
        logging.info("Seed: %d (drawn; repeat this run with --seed %d).", seed, seed)
    else:
        logging.info("Seed: %d (%s).", seed, "given" if how == "given" else "the resumed run's")
    return seed, how
