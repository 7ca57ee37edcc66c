"""The photo space: a VGG-like network for 64x64 colour photos, trained on images augmented as
phones take them (`fashion adapt`)."""

from __future__ import annotations

import keras

from fashion.spaces.augment import ShuffledBatches
from fashion.spaces.base import SearchSpace
from fashion.spaces.layers import FusedBatchNormalization
from fashion.storage.classes import NUM_CLASSES, PHOTO_SHAPE

# The network, stage by stage (64 -> 32 -> 16 -> 8 pixels): filters, and 3x3 convolutions per
# stage. (32, 64, 128, 256) x (2, 2, 2, 1) has 0.59M parameters, the size of the 658K-parameter
# network a feasibility probe took to 84.5% on development photos from scratch (issue 20).
WIDTHS = (32, 64, 128, 256)
CONVOLUTIONS = (2, 2, 2, 1)
# Batch statistics of the last ~10 steps, as the vgg space measured best for short trainings.
BATCH_NORM_MOMENTUM = 0.9
# Augmentation that imitates phones, as shares of the image (Keras's preprocessing layers):
# a photo held a little crooked, nearer or farther, off-centre, in other light.
ROTATION = 0.05  # of a full turn: up to 18 degrees either way
ZOOM = 0.15
SHIFT = 0.1
CONTRAST = 0.3
BRIGHTNESS = 0.2


class PhotoHyperModel(SearchSpace):
    """A fixed VGG-like network on `PHOTO_SHAPE` photos; nothing is searched.

    Stages of 3x3 convolutions with batch norm and ReLU, max-pooling between them, global
    average pooling (any garment position counts the same), dropout and a softmax. Random flips,
    rotations, zooms, shifts, contrast and brightness are layers of the model, active only in
    training, so the saved model takes a photo as it is. AdamW with label smoothing 0.1, as the
    vgg spaces; the constants above and `fixed` are the settings to tune.
    """

    name = "photo"
    family = "cnn"
    input_shape = PHOTO_SHAPE
    batch_size = 64
    # Fixed, not searched: a user's folder is too small to rank settings on, and the search
    # would spend the minutes training needs.
    fixed = {"learning_rate": 1e-3, "weight_decay": 1e-2, "dropout": 0.3,
             "label_smoothing": 0.1}

    def build(self, hp):
        settings = self._fix(hp)
        x = inputs = keras.Input(PHOTO_SHAPE)
        x = self._augmentation()(x)
        for stage, (filters, repeats) in enumerate(zip(WIDTHS, CONVOLUTIONS, strict=True)):
            if stage:
                x = keras.layers.MaxPooling2D()(x)
            for _ in range(repeats):
                # Batch norm's shift makes the convolution's bias redundant.
                x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
                x = FusedBatchNormalization(momentum=BATCH_NORM_MOMENTUM)(x)
                x = keras.layers.Activation("relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(settings["dropout"], seed=self.seed + 6)(x)
        outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax")(x)
        model = keras.Model(inputs, outputs, name="photo")
        optimizer = keras.optimizers.AdamW(settings["learning_rate"],
                                           weight_decay=settings["weight_decay"])
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=settings["label_smoothing"])
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                      **self.compile_options())
        return model

    def _augmentation(self) -> keras.Sequential:
        """Seeded random layers, so a resumed training draws what an uninterrupted one would
        (their generators' state is backed up with the weights)."""
        seed = self.seed
        return keras.Sequential([
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(ROTATION, fill_mode="reflect", seed=seed + 1),
            keras.layers.RandomZoom(ZOOM, fill_mode="reflect", seed=seed + 2),
            keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="reflect", seed=seed + 3),
            keras.layers.RandomContrast(CONTRAST, value_range=(0, 1), seed=seed + 4),
            keras.layers.RandomBrightness(BRIGHTNESS, value_range=(0, 1), seed=seed + 5),
        ], name="augmentation")

    def declare_hyperparameters(self, hp):
        """Declare the fixed settings, so a tuner or `fashion adapt` knows them all."""
        self._fix(hp)

    def _fix(self, hp) -> dict:
        return {name: hp.Fixed(name, value) for name, value in self.fixed.items()}

    def fit(self, hp, model, x, y, callbacks=(), **kwargs):
        """Train on batches shuffled as a function of (seed, epoch), so a resumed training sees
        the photos an uninterrupted one would."""
        batches = ShuffledBatches(x, y, self.batch_size, seed=self.seed)
        return model.fit(batches, shuffle=False, callbacks=[*callbacks, batches.follow_epochs()],
                         **kwargs)
