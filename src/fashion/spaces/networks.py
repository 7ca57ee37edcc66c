"""The networks of the vgg spaces, as plain data: a time budget chooses one per run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Network:
    """The shape of a vgg-space network: filters and convolutions at 28x28, 14x14 and 7x7."""

    widths: tuple[int, int, int]
    convolutions: tuple[int, int, int]
    # Residual: convolutions come in pairs with a shortcut around each pair (He et al., 2016),
    # which keeps deep, wide networks trainable; a wide ResNet (Zagoruyko and Komodakis, 2016).
    residual: bool = False

    def multiply_adds(self) -> int:
        """The 3x3 convolutions' multiply-adds for one 28x28 image: the cost of a network
        relative to another (measured, vgg-2x trained 3.1x slower than vgg for 4.0x these)."""
        total, channels = 0, 1
        for stage, (width, repeats) in enumerate(zip(self.widths, self.convolutions,
                                                     strict=True)):
            pixels = (28 // 2**stage) ** 2
            for _ in range(repeats):
                total += pixels * 9 * channels * width
                channels = width
        return total


# The networks a time budget chooses from (fashion.runs.plan), cheapest first. "vgg" is the network
# the presets were measured with (193,194 parameters, about 43 s an epoch of 54,000 images on 2
# cores in float32); the wider ones cost about 2x and 4x its arithmetic, the residual ones are
# WRN-16-4 and WRN-16-8 without their first convolution (2.7M and 11M parameters), the family
# that holds 96% on Fashion-MNIST in the literature and that only a GPU trains in minutes.
NETWORKS = {
    "vgg": Network((32, 64, 128), (1, 2, 1)),
    "vgg-wide": Network((48, 96, 192), (1, 2, 1)),
    "vgg-2x": Network((64, 128, 256), (1, 2, 1)),
    "wrn-16-4": Network((64, 128, 256), (4, 4, 4), residual=True),
    "wrn-16-8": Network((128, 256, 512), (4, 4, 4), residual=True),
}
