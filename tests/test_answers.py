"""The answers' shapes: the top classes of an image, and the table `fashion predict` prints."""

import numpy as np
import pytest

from fashion.inference.answers import format_table, top_classes


def test_top_classes_and_table():
    probabilities = np.array([0.1, 0, 0.6, 0, 0, 0, 0.3, 0, 0, 0], np.float32)
    top = top_classes(probabilities, 2)
    assert top == [{"class_id": 2, "label": "Pullover", "probability": pytest.approx(0.6)},
                   {"class_id": 6, "label": "Shirt", "probability": pytest.approx(0.3)}]
    table = format_table([{"file": "a.png", "top": top}]).splitlines()
    assert table == ["file   top-1          top-2", "a.png  Pullover 0.60  Shirt 0.30"]
