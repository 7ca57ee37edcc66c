"""Train, tune and serve neural networks that recognise clothing in Fashion-MNIST images."""

__version__ = "0.1.0"

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
