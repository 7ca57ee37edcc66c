"""The layer `fashion` adds to models it saves: flip test-time augmentation."""

from __future__ import annotations

import keras

from fashion.errors import ModelError


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
