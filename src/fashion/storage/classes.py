"""Fashion-MNIST's ten classes and image shape, which every layer speaks in."""

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
INPUT_SHAPE = (28, 28, 1)  # grayscale 28x28, as the dataset
