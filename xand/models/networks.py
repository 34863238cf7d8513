"""ECG classifiers: the lead-wise XAND-style default and the peer baselines, in one registry.

Every model maps a normalised batch ``x: (B, 12, T) float32`` (see ``xand.data.preprocess.normalize``) to
logits ``(B, n_outputs)`` (``n_outputs=1`` for a binary head, 5 for the multi-label baseline in
``SUPERCLASSES`` order). Every model exposes ``cam_layer`` (the last encoder conv block, for Grad-CAM),
``leadwise`` (whether ``cam_layer`` runs on ``B*12`` single-lead sequences) and ``multilabel``, and, when
built with ``aux=True``, ``forward_aux(x) -> (logits, {"device": (B, n_devices), "sex": (B, 1)})``.

References
----------
- XAND-ECG lead-wise design: one shared single-lead encoder, per-lead features concatenated, so that
  each lead's contribution stays addressable (lead attribution, lead dropping).
- He K. et al., Deep residual learning for image recognition, CVPR 2016 (residual blocks).
- Strodthoff N., Wagner P., Schaeffter T., Samek W., Deep learning for ECG analysis: benchmarks and
  insights from PTB-XL, IEEE JBHI 25(5) 2021 (``resnet1d``, ``inception1d``, multi-label superclasses).
- Fawaz H.I. et al., InceptionTime: finding AlexNet for time series classification, DMKD 2020, and
  ECG-XPLAIM (an explainable Inception-style 1D CNN for 12-lead ECG, 2024) for ``inception1d``.
- TrustECG and the PTB-XL benchmark train one multi-label model over NORM, MI, STTC, CD, HYP
  (``multilabel``).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from xand.constants import N_LEADS, SUPERCLASSES
from xand.registry import Registry

#: name -> model class or factory(**cfg) -> nn.Module
MODELS: Registry[Callable[..., nn.Module]] = Registry("model", default="leadwise")


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model class or factory under ``name`` (``MODELS.register``)."""
    return MODELS.register(name)


def list_models() -> list[str]:
    """Registered model names, the default (``leadwise``) first."""
    return MODELS.names()


def create_model(name: str, **cfg) -> nn.Module:
    """Build the registered model ``name`` with keyword options ``cfg``.

    Raises
    ------
    UnknownNameError
        ``name`` is not registered (the message lists the valid names).
    """
    model = MODELS.create(name, **cfg)
    model.model_name = name
    return model


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------------------------- base

class ECGModel(nn.Module):
    """Shared plumbing: a pooled feature vector -> classifier, plus optional device/sex aux heads.

    Subclasses implement ``features(x) -> (B, D)`` and set ``cam_layer``.
    """

    leadwise: bool = False
    multilabel: bool = False

    def __init__(self, feature_dim: int, n_outputs: int, hidden: int | None, dropout: float,
                 aux: bool, n_devices: int):
        super().__init__()
        self.n_outputs = n_outputs
        if hidden:
            self.classifier = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True),
                nn.Dropout(dropout), nn.Linear(hidden, n_outputs),
            )
        else:
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, n_outputs))
        self.aux = bool(aux)
        if self.aux:
            # Aux heads see the same shared features as the classifier: a cheap multi-task regulariser
            # (device and sex are recorded for every ECG, unlike the diagnoses).
            self.aux_heads = nn.ModuleDict({
                "device": nn.Linear(self._aux_dim(feature_dim), max(int(n_devices), 2)),
                "sex": nn.Linear(self._aux_dim(feature_dim), 1),
            })

    def _aux_dim(self, feature_dim: int) -> int:
        return feature_dim

    def _aux_input(self, feats: Tensor) -> Tensor:
        return feats

    def features(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, 12, T)`` normalised -> logits ``(B, n_outputs)``."""
        return self.classifier(self.features(x))

    def forward_aux(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits plus aux logits ``{"device": (B, n_devices), "sex": (B, 1)}`` (needs ``aux=True``)."""
        feats = self.features(x)
        logits = self.classifier(feats)
        if not self.aux:
            return logits, {}
        a = self._aux_input(feats)
        return logits, {k: head(a) for k, head in self.aux_heads.items()}


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm1d(c_out), nn.ReLU(inplace=True),
    )


class ResBlock1d(nn.Module):
    """Basic residual block (He et al. 2016), 1D: conv-BN-ReLU-conv-BN + shortcut, ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 7, stride: int = 1):
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def _stages(channels: tuple[int, ...], blocks: tuple[int, ...], kernel_size: int, c_in: int,
            strides: tuple[int, ...] | None = None) -> nn.Sequential:
    strides = strides or (1,) + (2,) * (len(channels) - 1)
    layers: list[nn.Module] = []
    for c, n, s in zip(channels, blocks, strides):
        for j in range(n):
            stride = s if j == 0 else 1
            layers.append(ResBlock1d(c_in, c, kernel_size, stride))
            c_in = c
    return nn.Sequential(*layers)


def _per_stage(value: int | tuple[int, ...], n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"expected {n} per-stage values, got {value}")
    return value


# ----------------------------------------------------------------------------------------- leadwise

@register_model("leadwise")
class LeadwiseNet(ECGModel):
    """XAND-style lead-wise classifier: one shared single-lead residual encoder per lead.

    The 12 leads are folded into the batch (``(B, 12, T) -> (B*12, 1, T)``), encoded by the same
    residual CNN (kernel 7) to ``F = channels[-1]`` features per lead (global average pooling), the
    12 x F features are concatenated and classified by a small fully connected head. Sharing one encoder
    across leads keeps each lead's evidence separable (``encode``), which lead attribution and lead
    dropping rely on.

    Default size: 4 stages (32, 64, 128, 256 channels, one residual block each), FC head 3072 -> 512 -> 1:
    about 2.5M parameters (1.0M encoder, 1.6M head).

    Speed: a strided stem (``stem_stride``, default 4: a stride-2 conv then a stride-2 max-pool) lets
    every residual block run at 1/4 (and deeper stages at 1/8 ... 1/64) of the input resolution, about
    1/6 of the FLOPs of the same network at full resolution. ``full_resolution=True`` builds the same
    network with ``stem_stride=1`` so the two can be compared (``python -m xand bench train``).

    Parameters
    ----------
    n_outputs : logits per ECG (1 = binary head).
    width : multiplier on ``channels`` (and ``hidden``).
    channels, blocks : encoder stages; ``blocks`` residual blocks per stage (int or per stage).
    strides : time stride of each stage's first block (default ``(1, 2, 2, 4)``: with the stem's 4 the
        stages run at 1/4, 1/8, 1/16 and 1/64 of the input rate; the wide last stage is the costly one).
    kernel_size : conv kernel (7, as XAND-ECG).
    stem_stride : 1, 2 or 4 (how much the stem downsamples before the first residual block).
    full_resolution : shorthand for ``stem_stride=1``.
    hidden : width of the FC head's hidden layer (0 = linear head).
    dropout : dropout before each FC layer.
    aux, n_devices : device/sex auxiliary heads on the lead-averaged features.
    """

    leadwise = True

    def __init__(self, n_outputs: int = 1, width: float = 1.0,
                 channels: tuple[int, ...] = (32, 64, 128, 256), blocks: int | tuple[int, ...] = 1,
                 strides: tuple[int, ...] = (1, 2, 2, 4), kernel_size: int = 7, stem_stride: int = 4, full_resolution: bool = False,
                 hidden: int = 512, dropout: float = 0.3, aux: bool = True, n_devices: int = 2):
        channels = tuple(max(4, int(round(c * width))) for c in channels)
        blocks = _per_stage(blocks, len(channels))
        if full_resolution:
            stem_stride = 1
        if stem_stride not in (1, 2, 4):
            raise ValueError(f"stem_stride must be 1, 2 or 4, got {stem_stride}")
        n_feat = channels[-1]
        hidden = int(round(hidden * width)) if hidden else 0
        super().__init__(N_LEADS * n_feat, n_outputs, hidden, dropout, aux, n_devices)
        self.n_features = n_feat
        self.stem_stride = stem_stride
        stem: list[nn.Module] = [_conv_bn(1, channels[0], kernel_size, stride=2 if stem_stride >= 2 else 1)]
        if stem_stride == 4:
            stem.append(nn.MaxPool1d(2))
        self.stem = nn.Sequential(*stem)
        self.encoder = _stages(channels, blocks, kernel_size, channels[0], _per_stage(strides, len(channels)))
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.cam_layer = self.encoder[-1]

    def _aux_dim(self, feature_dim: int) -> int:
        return feature_dim // N_LEADS

    def _aux_input(self, feats: Tensor) -> Tensor:
        return feats.view(feats.shape[0], N_LEADS, -1).mean(dim=1)

    def encode(self, x: Tensor) -> Tensor:
        """Per-lead features: ``x (B, 12, T)`` -> ``(B, 12, F)`` (lead-major, ``LEADS`` order)."""
        b, leads, t = x.shape
        z = self.encoder(self.stem(x.reshape(b * leads, 1, t)))
        return self.pool(z).view(b, leads, -1)

    def features(self, x: Tensor) -> Tensor:
        return self.encode(x).flatten(1)

    def classify_features(self, feats: Tensor) -> Tensor:
        """Logits from per-lead features ``(B, 12, F)`` (e.g. with some leads zeroed for lead dropping)."""
        return self.classifier(feats.flatten(1))


@register_model("multilabel")
class MultilabelNet(LeadwiseNet):
    """Multi-label variant: the lead-wise network with 5 sigmoid outputs (NORM, MI, STTC, CD, HYP).

    One model for all superclasses, trained on the any-likelihood superclass presence labels, as in
    the PTB-XL benchmark (Strodthoff et al. 2021) and TrustECG; evaluated per head on the same pure-label
    subsets as the per-head models so the numbers compare.
    """

    multilabel = True

    def __init__(self, n_outputs: int = len(SUPERCLASSES), **kw):
        super().__init__(n_outputs=n_outputs, **kw)


# ------------------------------------------------------------------------------------- baselines

class _ConcatPool(nn.Module):
    """Average and max pooling concatenated (fast.ai / Strodthoff et al. 2021 head)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)


@register_model("resnet1d")
class ResNet1d(ECGModel):
    """All 12 leads as input channels; residual 1D CNN after Strodthoff et al. 2021 (resnet1d / xresnet1d).

    Stem of three convs (the xresnet stem) with stride 2 + max-pool, residual stages, concat pooling,
    FC head.
    """

    def __init__(self, n_outputs: int = 1, width: float = 1.0, channels: tuple[int, ...] = (64, 128, 256),
                 blocks: int | tuple[int, ...] = (1, 1, 1), kernel_size: int = 5, hidden: int = 128,
                 dropout: float = 0.3, aux: bool = True, n_devices: int = 2):
        channels = tuple(max(4, int(round(c * width))) for c in channels)
        blocks = _per_stage(blocks, len(channels))
        super().__init__(2 * channels[-1], n_outputs, hidden, dropout, aux, n_devices)
        c0 = channels[0]
        self.stem = nn.Sequential(
            _conv_bn(N_LEADS, c0 // 2, kernel_size, stride=2), _conv_bn(c0 // 2, c0 // 2, kernel_size),
            _conv_bn(c0 // 2, c0, kernel_size), nn.MaxPool1d(2),
        )
        self.encoder = _stages(channels, blocks, kernel_size, c0)
        self.pool = _ConcatPool()
        self.cam_layer = self.encoder[-1]

    def features(self, x: Tensor) -> Tensor:
        return self.pool(self.encoder(self.stem(x)))


class InceptionBlock1d(nn.Module):
    """InceptionTime module: bottleneck, three parallel convs (long kernels) and a max-pool branch."""

    def __init__(self, c_in: int, n_filters: int, kernels: tuple[int, ...], bottleneck: int):
        super().__init__()
        self.bottleneck = nn.Conv1d(c_in, bottleneck, 1, bias=False) if c_in > 1 else nn.Identity()
        b = bottleneck if c_in > 1 else c_in
        self.convs = nn.ModuleList(nn.Conv1d(b, n_filters, k, padding=k // 2, bias=False) for k in kernels)
        self.pool_conv = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1),
                                       nn.Conv1d(c_in, n_filters, 1, bias=False))
        self.bn = nn.BatchNorm1d(n_filters * (len(kernels) + 1))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        z = self.bottleneck(x)
        out = torch.cat([conv(z) for conv in self.convs] + [self.pool_conv(x)], dim=1)
        return self.relu(self.bn(out))


@register_model("inception1d")
class Inception1d(ECGModel):
    """Inception1d after Strodthoff et al. 2021 / InceptionTime (Fawaz et al. 2020), as in ECG-XPLAIM.

    ``depth`` inception modules (kernels 39/19/9, bottleneck 32), a residual shortcut every 3 modules,
    concat pooling, FC head. All 12 leads as channels, full time resolution.
    """

    def __init__(self, n_outputs: int = 1, width: float = 1.0, depth: int = 6, n_filters: int = 32,
                 kernels: tuple[int, ...] = (39, 19, 9), bottleneck: int = 32, hidden: int = 128,
                 dropout: float = 0.3, aux: bool = True, n_devices: int = 2):
        n_filters = max(4, int(round(n_filters * width)))
        c_out = n_filters * (len(kernels) + 1)
        super().__init__(2 * c_out, n_outputs, hidden, dropout, aux, n_devices)
        kernels = tuple(k - 1 + k % 2 for k in kernels)  # odd kernels keep the length with k//2 padding
        self.blocks = nn.ModuleList()
        self.shortcuts = nn.ModuleList()
        c_in = N_LEADS
        res_in = N_LEADS
        for d in range(depth):
            self.blocks.append(InceptionBlock1d(c_in, n_filters, kernels, bottleneck))
            c_in = c_out
            if d % 3 == 2:
                self.shortcuts.append(nn.Sequential(nn.Conv1d(res_in, c_out, 1, bias=False),
                                                    nn.BatchNorm1d(c_out)))
                res_in = c_out
        self.pool = _ConcatPool()
        self.relu = nn.ReLU(inplace=True)
        self.cam_layer = self.blocks[-1]

    def features(self, x: Tensor) -> Tensor:
        res = x
        for d, block in enumerate(self.blocks):
            x = block(x)
            if d % 3 == 2:
                x = self.relu(x + self.shortcuts[d // 3](res))
                res = x
        return self.pool(x)


@register_model("cnn1d")
class CNN1d(ECGModel):
    """Small plain CNN: three conv-BN-ReLU-maxpool blocks over all 12 leads, global average pool, linear.

    About 50k parameters: the "simplest thing that could work" floor for the comparison.
    """

    def __init__(self, n_outputs: int = 1, width: float = 1.0, channels: tuple[int, ...] = (32, 64, 64),
                 kernel_size: int = 7, dropout: float = 0.2, aux: bool = True, n_devices: int = 2):
        channels = tuple(max(4, int(round(c * width))) for c in channels)
        super().__init__(channels[-1], n_outputs, None, dropout, aux, n_devices)
        layers: list[nn.Module] = []
        c_in = N_LEADS
        for c in channels:
            layers.append(nn.Sequential(_conv_bn(c_in, c, kernel_size), nn.MaxPool1d(2)))
            c_in = c
        self.encoder = nn.Sequential(*layers)
        self.cam_layer = self.encoder[-1]

    def features(self, x: Tensor) -> Tensor:
        return self.encoder(x).mean(dim=-1)
