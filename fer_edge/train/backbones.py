"""Backbone registry: each entry says its input size, channels, ImageNet preprocessing and how to build it; the
classifier builder, unfreezing and SavedModel export. Loading, re-heading and resizing a model: ``surgery``.

Every classifier has the same shape, so later stages (re-heading, unfreezing, Grad-CAM, export) treat them alike:
input (H, W, 1) float in [0, 1] -> preprocessing layers -> nested model "backbone" (last conv feature map)
-> GlobalAveragePooling -> Dropout -> Dense "head" (softmax over the dataset's classes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fer_edge.errors import FerEdgeError
from fer_edge.registry import Registry

# ImageNet preprocessing modes, applied inside the model to inputs in [0, 1]:
#   unit: as is; tf: [-1, 1]; raw255: [0, 255] (the app rescales itself); caffe: [0, 255] minus BGR mean.
PREPROCESS = ("unit", "tf", "raw255", "caffe")
CAFFE_MEAN = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class Backbone:
    """One registered backbone. ``build(shape, weights)`` returns a Keras model ending in a conv feature map."""

    name: str
    input_size: int
    build: Callable[[tuple[int, int, int], str | None], object]
    preprocess: str = "unit"
    rgb: bool = True            # needs 3 input channels (gray faces are tiled)
    imagenet: bool = True       # has ImageNet weights in keras.applications
    min_size: int = 32
    description: str = ""


BACKBONES: Registry[Backbone] = Registry("backbone")


def _keras_app(fn_name: str, **kwargs: object) -> Callable[[tuple[int, int, int], str | None], object]:
    def build(shape: tuple[int, int, int], weights: str | None) -> object:
        from keras import applications

        fn = getattr(applications, fn_name)
        return fn(input_shape=shape, include_top=False, weights=weights, **kwargs)

    return build


def _compact(shape: tuple[int, int, int], weights: str | None) -> object:
    """A VGG-style CNN for 48-64 px gray faces: 4 stages (32-64-128-256), 1.3M parameters."""
    import keras
    from keras import layers

    if weights not in (None, "none"):
        raise FerEdgeError("compact has no ImageNet weights; use --weights none or a checkpoint path")
    inp = keras.Input(shape)
    x = inp
    for stage, (filters, convs) in enumerate(((32, 2), (64, 2), (128, 3), (256, 2))):
        for i in range(convs):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"s{stage}_conv{i}")(x)
            x = layers.BatchNormalization(name=f"s{stage}_bn{i}")(x)
            x = layers.ReLU(name=f"s{stage}_relu{i}")(x)
        if stage < 3:
            x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
            x = layers.SpatialDropout2D(0.1, name=f"s{stage}_drop")(x)
    return keras.Model(inp, x, name="compact")


def _sepnet(widths: tuple[int, ...]) -> Callable[[tuple[int, int, int], str | None], object]:
    """A small residual network of depthwise-separable 3x3 convolutions for 48 px gray faces: a plain conv stem,
    then per stage two separable convs (BatchNorm, LeakyReLU 0.02) with a strided 1x1 shortcut, max-pool and
    spatial dropout. The classifier's GAP + softmax head equals the literature's 1x1 conv to the classes + GAP."""

    def build(shape: tuple[int, int, int], weights: str | None) -> object:
        import keras
        from keras import layers

        if weights not in (None, "none"):
            raise FerEdgeError("sepnet has no ImageNet weights; use --weights none or a checkpoint path")
        inp = keras.Input(shape)
        x = layers.Conv2D(widths[0] // 2, 3, padding="same", use_bias=False, name="stem_conv")(inp)
        x = layers.BatchNormalization(name="stem_bn")(x)
        x = layers.LeakyReLU(0.02, name="stem_act")(x)
        for stage, filters in enumerate(widths):
            last = stage == len(widths) - 1
            shortcut = layers.Conv2D(filters, 1, strides=1 if last else 2, padding="same", use_bias=False,
                                     name=f"s{stage}_short")(x)
            shortcut = layers.BatchNormalization(name=f"s{stage}_short_bn")(shortcut)
            for i in range(2):
                x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"s{stage}_sep{i}")(x)
                x = layers.BatchNormalization(name=f"s{stage}_bn{i}")(x)
                if i == 0:
                    x = layers.LeakyReLU(0.02, name=f"s{stage}_act{i}")(x)
            if not last:
                x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"s{stage}_pool")(x)
            x = layers.Add(name=f"s{stage}_add")([x, shortcut])
            x = layers.LeakyReLU(0.02, name=f"s{stage}_out")(x)
            x = layers.SpatialDropout2D(0.1, name=f"s{stage}_drop")(x)
        return keras.Model(inp, x, name="sepnet")

    return build


for _b in (
    Backbone("compact", 48, _compact, "unit", rgb=False, imagenet=False, min_size=32,
             description="VGG-style CNN for 48 px gray faces, 1.3M params (the default edge model)"),
    Backbone("sepnet", 48, _sepnet((48, 96, 192, 384)), "unit", rgb=False, imagenet=False, min_size=32,
             description="residual depthwise-separable CNN for 48 px gray faces, 0.41M params"),
    Backbone("sepnet_wide", 48, _sepnet((64, 128, 256, 512)), "unit", rgb=False, imagenet=False, min_size=32,
             description="sepnet with widths 64-512, 0.73M params"),
    Backbone("mobilenetv2", 96, _keras_app("MobileNetV2", alpha=1.0), "tf",
             description="MobileNetV2, width 1.0"),
    Backbone("mobilenetv2_035", 96, _keras_app("MobileNetV2", alpha=0.35), "tf",
             description="MobileNetV2, width 0.35"),
    Backbone("mobilenetv3small", 96, _keras_app("MobileNetV3Small", include_preprocessing=True), "raw255",
             description="MobileNetV3 Small"),
    Backbone("mobilenetv3large", 96, _keras_app("MobileNetV3Large", include_preprocessing=True), "raw255",
             description="MobileNetV3 Large"),
    Backbone("efficientnetb0", 96, _keras_app("EfficientNetB0"), "raw255", description="EfficientNet-B0"),
    Backbone("resnet50", 96, _keras_app("ResNet50"), "caffe", description="ResNet50"),
    Backbone("vgg16", 48, _keras_app("VGG16"), "caffe", description="VGG16"),
    Backbone("vgg19", 48, _keras_app("VGG19"), "caffe", description="VGG19"),
    Backbone("inceptionresnetv2", 96, _keras_app("InceptionResNetV2"), "tf", min_size=75,
             description="InceptionResNetV2"),
):
    BACKBONES.add(_b.name, _b)


def resolve_weights(spec: Backbone, weights: str) -> str | None:
    """'imagenet' -> 'imagenet' (Keras downloads it), 'none' -> None; a path is loaded later by the caller."""
    if weights == "imagenet":
        if not spec.imagenet:
            raise FerEdgeError(f"{spec.name} has no ImageNet weights; use --weights none or a checkpoint path")
        return "imagenet"
    return None


def build_classifier(spec: Backbone, n_classes: int, weights: str = "none", input_size: int | None = None,
                     dropout: float = 0.4) -> object:
    """The full classifier: [0, 1] gray input -> preprocessing -> backbone -> GAP -> dropout -> softmax head."""
    import keras
    from keras import layers

    size = input_size or spec.input_size
    if size < spec.min_size:
        raise FerEdgeError(f"{spec.name} needs an input of at least {spec.min_size} px, got {size}")
    channels = 3 if spec.rgb else 1
    try:
        backbone = spec.build((size, size, channels), resolve_weights(spec, weights))
    except FerEdgeError:
        raise
    except Exception as exc:
        if weights == "imagenet":
            raise FerEdgeError(f"could not get ImageNet weights for {spec.name} ({type(exc).__name__}); "
                               "offline? use --weights none or --weights PATH to a local checkpoint") from None
        raise
    backbone.name = "backbone"
    if resolve_weights(spec, weights) is None:
        fresh_batchnorm(backbone)
    inp = keras.Input((size, size, 1), name="face")
    x = inp
    if spec.rgb:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if spec.preprocess == "tf":
        x = layers.Rescaling(2.0, offset=-1.0, name="to_pm1")(x)
    elif spec.preprocess == "raw255":
        x = layers.Rescaling(255.0, name="to_255")(x)
    elif spec.preprocess == "caffe":
        # one Rescaling with constant per-channel offsets: a Normalization layer here exports its mean and
        # variance as extra ONNX graph inputs, which ONNX Runtime then demands (seen with ResNet50)
        x = layers.Rescaling(255.0, offset=[-m for m in CAFFE_MEAN], name="caffe_mean")(x)
    x = backbone(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    out = layers.Dense(n_classes, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name=f"fer_{spec.name}")


FRESH_BN_MOMENTUM = 0.99


def fresh_batchnorm(model: object) -> int:
    """From scratch, BatchNorm moving statistics must settle within a few hundred steps: keras.applications'
    MobileNets use momentum 0.999 (tuned for ImageNet-length runs), which leaves the moving statistics near their
    initial values for thousands of steps, so validation predicts one class while training loss falls (seen:
    MobileNetV2 from scratch on FERPlus, val accuracy 0.37 then 0.26 after two epochs). Returns layers changed."""
    from keras import layers

    changed = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, layers.BatchNormalization) and layer.momentum > FRESH_BN_MOMENTUM:
            layer.momentum = FRESH_BN_MOMENTUM
            changed += 1
    return changed


def export_saved_model(model: object, target: str | Path) -> Path:
    """Write ``model`` as a TensorFlow SavedModel folder (signature "serve"), whole or not at all."""
    from fer_edge import atomic

    with atomic.atomic_dir(target) as tmp:
        model.export(str(tmp), format="tf_saved_model", verbose=False)
    return Path(target)


def unfreeze(model: object, fraction: float) -> None:
    """Make the top ``fraction`` of the backbone's layers trainable (0 = head only, 1 = all).

    BatchNormalization layers in a partly frozen backbone stay frozen, as is usual for fine-tuning.
    """
    backbone = model.get_layer("backbone")
    layers_ = backbone.layers
    start = round(len(layers_) * (1.0 - fraction))
    backbone.trainable = fraction > 0
    for i, layer in enumerate(layers_):
        train = i >= start
        if fraction < 1.0 and layer.__class__.__name__ == "BatchNormalization":
            train = False
        layer.trainable = train
