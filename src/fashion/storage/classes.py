"""Fashion-MNIST's ten classes and image shape, which every layer speaks in."""

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)
INPUT_SHAPE = (28, 28, 1)  # grayscale 28x28, as the dataset
# A photo model's input (`fashion adapt`): colour photos resized to 64x64, where a 28x28 grey
# image loses the shape a phone photo's garment has (docs/photos.md).
PHOTO_SIZE = 64
PHOTO_SHAPE = (PHOTO_SIZE, PHOTO_SIZE, 3)
