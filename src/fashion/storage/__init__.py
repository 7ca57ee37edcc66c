"""Files every layer reads: the dataset and its classes, and files written whole or not at all."""
