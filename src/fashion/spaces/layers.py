"""The layers `fashion` adds to models it saves: fused batch norm and flip test-time averaging."""

from __future__ import annotations

import keras

from fashion.errors import ModelError

# The input types TensorFlow's fused kernel takes (its statistics are float32 whatever they are).
FUSED_DTYPES = ("float16", "bfloat16", "float32")


@keras.saving.register_keras_serializable(package="fashion")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras's batch norm, computed by TensorFlow's fused kernel where TensorFlow runs it.

    Keras 3 normalises with a dozen element-wise and reduction ops, each a pass over the
    activations, and these layers took most of a vgg training step on 2 CPU cores while the
    convolutions ran at the CPU's peak (benchmarks/roofline.py). TensorFlow's FusedBatchNormV3
    is one pass forward and one back: the same arithmetic (its running variance is the unbiased
    one, a factor n/(n-1) for n values a channel per batch), and the vgg network's training
    step 1.5-1.7x faster in bfloat16, 2x in float32 (docs/benchmarks.md). JAX and torch
    keep Keras's own, which XLA fuses anyway; so do the cases the kernel does not take (a mask,
    renorm, another axis or rank, synchronized statistics).
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        from tensorflow import compat  # only under the TensorFlow backend (`_fusable`)

        scale = self.gamma if self.scale else keras.ops.ones_like(self.moving_mean)
        offset = self.beta if self.center else keras.ops.zeros_like(self.moving_mean)
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        if training and self.trainable:
            outputs, mean, variance = compat.v1.nn.fused_batch_norm(
                inputs, scale, offset, mean=self.moving_mean, variance=self.moving_variance,
                epsilon=self.epsilon, is_training=True,
                exponential_avg_factor=1.0 - self.momentum)
            self.moving_mean.assign(mean)
            self.moving_variance.assign(variance)
            return outputs
        outputs, _, _ = compat.v1.nn.fused_batch_norm(
            inputs, scale, offset, mean=self.moving_mean, variance=self.moving_variance,
            epsilon=self.epsilon, is_training=False)
        return outputs

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None and not self.renorm
                and not self.synchronized and len(inputs.shape) == 4
                and self.axis in (-1, 3) and self.compute_dtype in FUSED_DTYPES)


@keras.saving.register_keras_serializable(package="fashion")
class HorizontalFlip(keras.layers.Layer):
    """Mirror images left to right, in training and inference alike (unlike `RandomFlip`)."""

    def call(self, images):
        return keras.ops.flip(images, axis=2)


def with_flip_averaging(model: keras.Model) -> keras.Model:
    """Wrap a model so it predicts the mean of its answers for an image and its mirror image.

    Garments are left-right symmetric and the network was trained on flipped images, so the
    two answers disagree in their errors; their mean is a cheap second opinion (test-time
    augmentation) at twice the prediction cost.
    """
    inputs = keras.Input(model.input_shape[1:])
    outputs = keras.layers.Average()([model(inputs), model(HorizontalFlip()(inputs))])
    return keras.Model(inputs, outputs, name=f"{model.name}_flip_averaged")


def average_of(models: list[keras.Model], name: str = "averaged") -> keras.Model:
    """One model that predicts the mean of several models' answers (an ensemble).

    Networks trained from other seeds err on other images, so their mean is right more often
    than any one of them, at the cost of each one's forward pass. The models keep their weights
    and are renamed `<name>_member<i>`, as Keras wants each layer of a model named once.
    """
    if not models or len({tuple(model.input_shape[1:]) for model in models}) > 1:
        raise ModelError("average_of needs one model or more, all taking images of one shape")
    inputs = keras.Input(models[0].input_shape[1:])
    members = []
    for i, model in enumerate(models):
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        own_inputs = keras.Input(model.input_shape[1:])
        member = keras.Model(own_inputs, clone(own_inputs), name=f"{name}_member{i}")
        members.append(member(inputs))
    return keras.Model(inputs, keras.layers.Average()(members), name=name)
