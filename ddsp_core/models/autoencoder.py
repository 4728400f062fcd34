"""The autoencoder: preprocessor -> (encoder) -> decoder -> processor group -> audio, with losses."""

import gin
import keras

from ddsp_core.models.model import Model


@gin.register(module="ddsp_core.models")
class Autoencoder(Model):
    """Resynthesizes audio from its features with a DDSP synthesizer.

    features -> preprocessor (e.g. scaled f0 and loudness) -> encoder (optional, e.g. a
    latent z from the audio) -> decoder (synthesizer controls) -> processor group
    (synths and effects) -> audio_synth; the losses compare audio_synth with the input
    'audio'.

    Args:
        preprocessor: Layer mapping the feature dict to conditioning, or None.
        encoder: Layer adding to the conditioning (e.g. 'z'), or None.
        decoder: Layer mapping the conditioning to a dict of controls.
        processor_group: `ddsp_core.processors.ProcessorGroup` reading the conditioning
            and controls by key.
        losses: Loss layers called as loss(target_audio, audio), each named.
    """

    def __init__(self, preprocessor=None, encoder=None, decoder=None, processor_group=None, losses=(),
                 name="autoencoder"):
        if decoder is None or processor_group is None:
            raise ValueError(
                "Autoencoder needs a decoder and a processor_group (set Autoencoder.decoder and "
                "Autoencoder.processor_group in gin, e.g. include 'models/solo_instrument.gin')."
            )
        losses = list(losses)
        super().__init__(loss_names=[loss.name for loss in losses], name=name)
        self.preprocessor = preprocessor
        self.encoder = encoder
        self.decoder = decoder
        self.processor_group = processor_group
        self.loss_objs = losses

    def call(self, features, training=False):
        """features: {'audio' [batch, n_samples], 'f0_hz' and 'loudness_db' [batch, n_frames], ...}.

        Returns the conditioning and controls, plus 'audio_synth' [batch, n_samples].
        """
        return self.synthesize(features, training=training)[0]

    def synthesize(self, features, training=False):
        """`call`'s outputs and every node's outputs of the processor group.

        Returns:
            (outputs, nodes): outputs as `call` returns them; nodes {processor name: {'signal':
            [batch, n_samples], 'controls': its scaled controls}}, e.g. nodes['harmonic']['signal']
            (the harmonic synth's audio alone) and nodes['harmonic']['controls']['amplitudes'].
        """
        conditioning = self.preprocessor(features) if self.preprocessor is not None else dict(features)
        if self.encoder is not None:
            conditioning = self.encoder(conditioning)
        controls = self.decoder(conditioning)
        outputs = {**conditioning, **controls}
        group = self.processor_group(outputs, return_outputs_dict=True)
        outputs["audio_synth"] = group["signal"]
        return outputs, group["controls"]

    def loss_terms(self, features, outputs):
        return {loss.name: loss(features["audio"], outputs["audio_synth"]) for loss in self.loss_objs}

    def generate(self, features):
        """Synthesized audio for a batch of features, [batch, n_samples] (inference)."""
        return self(features, training=False)["audio_synth"]


def count_trainable_parameters(model):
    """Number of trainable scalars (the figure in model.summary())."""
    return int(sum(keras.ops.size(v) for v in model.trainable_weights))
