"""Heads: the small networks a method puts on top of the encoder during training."""

import torch
import torch.nn.functional as F
from torch import nn

from .encoders.vit import TransformerBlock, sincos_pos_embed_2d

__all__ = [
    "CosineClassifier",
    "MAEDecoder",
    "PretextNet",
    "ProjectionHead",
    "PyramidHead",
    "SimCLRProjectionHead",
    "TileHead",
    "mlp_head",
]


class ProjectionHead(nn.Module):
    """An MLP described block by block.

    Each block is ``(in_dim, out_dim, batch_norm, activation)`` and becomes a
    linear layer followed by ``batch_norm`` and ``activation`` when they are not
    None. A linear layer followed by batch norm has no bias, since the norm's shift
    replaces it.

    Parameters
    ----------
    blocks : list of tuple of (int, int, nn.Module or None, nn.Module or None)
        The blocks, from input to output.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skssl.heads import ProjectionHead
    >>> head = ProjectionHead([(8, 4, nn.BatchNorm1d(4), nn.ReLU()), (4, 2, None, None)])
    >>> head(torch.randn(3, 8)).shape
    torch.Size([3, 2])
    """

    def __init__(self, blocks):
        super().__init__()
        layers = []
        for in_dim, out_dim, batch_norm, activation in blocks:
            layers.append(nn.Linear(in_dim, out_dim, bias=batch_norm is None))
            layers += [m for m in (batch_norm, activation) if m is not None]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class SimCLRProjectionHead(ProjectionHead):
    """The projection head ``g`` of SimCLR: Linear - BatchNorm - ReLU - Linear.

    Chen et al. (2020), "A Simple Framework for Contrastive Learning of Visual
    Representations", Section 2.1: the contrastive loss is applied to
    ``z = W2 ReLU(W1 h)`` rather than to the encoder's features ``h``, which keeps
    more information in ``h`` (Section 4.2); their implementation adds batch norm
    after ``W1``. The features used downstream are ``h``, before this head.

    Parameters
    ----------
    input_dim : int
        Size of the encoder features ``h``.
    hidden_dim : int, default=512
        Width of the hidden layer.
    output_dim : int, default=128
        Size of ``z``; the paper uses 128.

    Examples
    --------
    >>> import torch
    >>> from skssl.heads import SimCLRProjectionHead
    >>> SimCLRProjectionHead(32, hidden_dim=16, output_dim=8)(torch.randn(4, 32)).shape
    torch.Size([4, 8])
    """

    def __init__(self, input_dim, hidden_dim=512, output_dim=128):
        super().__init__(
            [
                (input_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
                (hidden_dim, output_dim, None, None),
            ]
        )


def mlp_head(n_features, n_outputs, hidden=256):
    """A small classification head: ``Linear-BatchNorm-ReLU-Linear``.

    The head of the classic predictive methods (rotation, jigsaw, context, intruder):
    a nonlinear head takes the pretext task's specialisation off the encoder's last
    layers, so its features transfer better (Gidaris et al. 2018; on Fashion-MNIST a
    linear rotation head gave 1.3 points less linear-probe accuracy).

    Parameters
    ----------
    n_features : int
        Input size (the encoder's features, concatenated over tiles where relevant).
    n_outputs : int
        Number of pretext classes.
    hidden : int, default=256
        Hidden units.

    Returns
    -------
    head : torch.nn.Sequential
        In train mode, freshly initialised.

    Examples
    --------
    >>> import torch
    >>> from skssl.heads import mlp_head
    >>> mlp_head(128, 4)(torch.zeros(2, 128)).shape
    torch.Size([2, 4])
    """
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, n_outputs),
    )


class PyramidHead(nn.Module):
    """:func:`mlp_head` on the pyramid of an encoder's feature map.

    The head of :class:`skssl.RotationPretrainer` for encoders with a feature map. The
    map ``(B, F, h, w)`` is pooled to its mean and to the means of a 2x2 grid of cells,
    ``5 * F`` features (the mean, then each channel's four cells), as the pyramid
    readout of ``transform`` (``pooling="pyramid"``) pools them (adaptive pooling
    here: on a map with an odd side the cells overlap by one row or column, where the
    readout splits it without overlap); then ``Linear - BatchNorm - ReLU - Linear``.
    The idea: a head on the mean alone makes the encoder write *where* things are into
    its mean features; this one sees where they are, so each quadrant's features can
    say *what* is there, which is what the readout gives a classifier.

    Parameters
    ----------
    in_features : int
        Channels of the feature map (the encoder's ``num_features``).
    n_outputs : int
        Number of pretext classes.
    hidden : int, default=256
        Hidden units, as in :func:`mlp_head`.

    Examples
    --------
    >>> import torch
    >>> from skssl.heads import PyramidHead
    >>> PyramidHead(32, 4)(torch.zeros(2, 32, 7, 7)).shape
    torch.Size([2, 4])
    """

    def __init__(self, in_features, n_outputs, hidden=256):
        super().__init__()
        self.mlp = mlp_head(5 * in_features, n_outputs, hidden)

    def forward(self, maps):
        if maps.ndim != 4:
            raise ValueError(
                f"PyramidHead takes feature maps of shape (B, F, h, w); got shape "
                f"{tuple(maps.shape)}."
            )
        cells = F.adaptive_avg_pool2d(maps, 2).flatten(1)
        return self.mlp(torch.cat([maps.mean((2, 3)), cells], dim=1))


class TileHead(nn.Module):
    """Classify every tile of a ``grid x grid`` layout from an encoder's feature map.

    The head of :class:`skssl.IntruderPretrainer`. The feature map ``(B, F, h, w)``
    is average-pooled to ``grid x grid`` cells (adaptive pooling: the cells of a map
    whose sides are not multiples of ``grid`` overlap, and a map smaller than the
    grid is repeated). Each cell's features, next to the image's mean features, go
    through a linear layer, to which a learnt embedding of the cell's position is
    added, then batch norm, ReLU and a linear layer to ``n_classes`` logits. The
    layers are shared by all the cells, so each answer is read at its tile's place
    in the map, with the whole image as context.

    Parameters
    ----------
    in_features : int
        Channels of the feature map (the encoder's ``num_features``).
    grid : int
        Tiles per side; the cells come out row-major, as the tiles of
        :func:`skssl.ops.corrupt_tiles`.
    n_classes : int
        Classes per tile.
    hidden : int, default=256
        Hidden units, as in :func:`mlp_head`.
    image_classes : int, default=0
        If positive, the head also answers one question about the whole image, with
        this many classes, from the image's mean features through its own
        :func:`mlp_head`, and returns the pair ``(tile_logits, image_logits)``.

    Examples
    --------
    >>> import torch
    >>> from skssl.heads import TileHead
    >>> head = TileHead(32, grid=4, n_classes=4)
    >>> head(torch.zeros(2, 32, 7, 7)).shape
    torch.Size([2, 16, 4])
    >>> tiles, image = TileHead(32, grid=4, n_classes=4, image_classes=4)(torch.zeros(2, 32, 7, 7))
    >>> tiles.shape, image.shape
    (torch.Size([2, 16, 4]), torch.Size([2, 4]))
    """

    def __init__(self, in_features, grid, n_classes, hidden=256, image_classes=0):
        super().__init__()
        self.grid = grid
        self.cell = nn.Linear(2 * in_features, hidden)
        self.position = nn.Parameter(torch.zeros(grid * grid, hidden))
        self.norm = nn.BatchNorm1d(hidden)
        self.out = nn.Linear(hidden, n_classes)
        self.image = mlp_head(in_features, image_classes, hidden) if image_classes else None

    def forward(self, maps):
        if maps.ndim != 4:
            raise ValueError(
                f"TileHead takes feature maps of shape (B, F, h, w); got shape "
                f"{tuple(maps.shape)}."
            )
        cells = F.adaptive_avg_pool2d(maps, self.grid).flatten(2).transpose(1, 2)
        mean = maps.mean((2, 3))
        hidden = self.cell(torch.cat([cells, mean.unsqueeze(1).expand_as(cells)], dim=-1))
        hidden = hidden + self.position
        hidden = F.relu(self.norm(hidden.flatten(0, 1))).unflatten(0, hidden.shape[:2])
        if self.image is None:
            return self.out(hidden)
        return self.out(hidden), self.image(mean)


class CosineClassifier(nn.Module):
    """A linear classifier on directions: ``scale * cos(x, w_k)`` for each class ``k``.

    Gidaris & Komodakis (2018), *Dynamic Few-Shot Visual Learning without
    Forgetting*, and BoWNet's prediction layer (Gidaris et al. 2020, Section 3.2):
    both the features and the class weights are L2-normalised, so that no class
    wins by the norm of its weight; the learnable ``scale`` sets how peaked the
    softmax over the classes can get, which a cosine in [-1, 1] alone could not.

    Parameters
    ----------
    n_features : int
        Input size.
    n_classes : int
        Number of outputs.
    scale : float, default=10.0
        Initial scale of the cosines.
    learn_scale : bool, default=True
        Whether the scale is trained.

    Examples
    --------
    >>> import torch
    >>> from skssl.heads import CosineClassifier
    >>> head = CosineClassifier(16, 5)
    >>> logits = head(torch.randn(3, 16))
    >>> logits.shape, bool(logits.abs().max() <= 10.0 + 1e-5)
    (torch.Size([3, 5]), True)
    """

    def __init__(self, n_features, n_classes, scale=10.0, learn_scale=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, n_features) / n_features**0.5)
        self.scale = nn.Parameter(torch.tensor(float(scale)), requires_grad=learn_scale)

    def forward(self, x):
        return self.scale * F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).T


class PretextNet(nn.Module):
    """The module trained by a pretrainer: the encoder, then the head.

    Inputs of shape ``(B, C, H, W)`` go through ``head(encoder(x))``. Inputs of shape
    ``(B, T, C, H, W)`` (``T`` tiles or patches per sample, as in jigsaw or context
    prediction) go through the shared encoder as one batch of ``B*T`` images, and the
    ``T`` feature vectors of a sample are concatenated in order before the head.
    With ``use_feature_map``, images go through ``head(encoder.feature_map(x))``
    instead: the head gets the encoder's last feature map ``(B, F, h, w)``, as
    :class:`TileHead` needs.

    Parameters
    ----------
    encoder : torch.nn.Module
    head : torch.nn.Module
    use_feature_map : bool, default=False
        Feed the head the encoder's feature map rather than its pooled features
        (the encoder needs a ``feature_map`` method).

    Examples
    --------
    >>> import torch
    >>> from skssl.heads import PretextNet
    >>> from skssl.encoders import make_encoder
    >>> enc = make_encoder("cnn", 1, 8, channels=(4,))
    >>> net = PretextNet(enc, torch.nn.Linear(2 * 4, 8))
    >>> net(torch.zeros(3, 2, 1, 8, 8)).shape
    torch.Size([3, 8])
    """

    def __init__(self, encoder, head, use_feature_map=False):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.use_feature_map = use_feature_map

    def forward(self, x):
        if self.use_feature_map:
            return self.head(self.encoder.feature_map(x))
        if x.ndim == 5:
            b, t = x.shape[:2]
            features = self.encoder(x.flatten(0, 1))
            return self.head(features.reshape(b, t * features.shape[-1]))
        return self.head(self.encoder(x))


class MAEDecoder(nn.Module):
    """The decoder of a masked autoencoder: visible tokens in, every patch's pixels out.

    He et al. (2022), "Masked Autoencoders Are Scalable Vision Learners", Section 3:
    the encoder's tokens of the visible patches are embedded to the decoder's width
    and put back in their places, a shared learnt mask token fills the hidden ones,
    a fixed 2-D sine-cosine position embedding
    (:func:`skssl.encoders.vit.sincos_pos_embed_2d`) tells the places apart, and
    ``depth`` Transformer blocks, a LayerNorm and a linear layer predict the pixels
    of every patch. The decoder only serves training, so it can be small.

    Parameters
    ----------
    grid_size : tuple of (int, int)
        Rows and columns of patches; ``num_patches`` is their product.
    patch_dim : int
        Pixels predicted per patch, ``patch_size**2 * channels``.
    encoder_dim : int
        Size of the encoder's tokens.
    decoder_dim : int, default=128
        Width of the decoder; a multiple of 4 (for the sine-cosine embedding).
    depth : int, default=2
        Number of Transformer blocks.
    num_heads : int, default=4
        Attention heads per block; divides ``decoder_dim``.
    mlp_ratio : float, default=4.0
        Hidden size of the blocks' MLPs, relative to ``decoder_dim``.

    Attributes
    ----------
    num_patches : int

    Examples
    --------
    >>> import torch
    >>> from skssl.heads import MAEDecoder
    >>> decoder = MAEDecoder((7, 7), patch_dim=16, encoder_dim=32, decoder_dim=16,
    ...                      depth=1, num_heads=2)
    >>> keep = torch.tensor([[0, 3, 8], [1, 2, 48]])  # 3 visible patches per image
    >>> decoder(torch.randn(2, 3, 32), keep).shape  # pixels of all 49 patches
    torch.Size([2, 49, 16])
    """

    def __init__(self, grid_size, patch_dim, encoder_dim, decoder_dim=128, depth=2, num_heads=4,
                 mlp_ratio=4.0):
        super().__init__()
        if decoder_dim < 4 or decoder_dim % 4 or decoder_dim % num_heads or depth < 1:
            raise ValueError(
                "decoder_dim must be a positive multiple of 4 and of num_heads, and depth at "
                f"least 1; got decoder_dim={decoder_dim}, num_heads={num_heads}, "
                f"depth={depth}."
            )
        self.num_patches = grid_size[0] * grid_size[1]
        self.embed = nn.Linear(encoder_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("pos_embed", sincos_pos_embed_2d(decoder_dim, grid_size)[None])
        self.blocks = nn.ModuleList(
            TransformerBlock(decoder_dim, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.pred = nn.Linear(decoder_dim, patch_dim)
        # MAE's initialisation: Xavier-uniform linear maps, a small random mask token.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, visible_tokens, keep_indices):
        """Predict the pixels of every patch from the tokens of the visible ones.

        Parameters
        ----------
        visible_tokens : torch.Tensor of shape (B, n_keep, encoder_dim)
            The encoder's patch tokens (no class token), in the order of ``keep_indices``.
        keep_indices : torch.LongTensor of shape (B, n_keep)
            Row-major index of the patch of each token, as from
            :func:`skssl.ops.random_masking`.

        Returns
        -------
        pixels : torch.Tensor of shape (B, num_patches, patch_dim)
        """
        if visible_tokens.ndim != 3 or keep_indices.shape != visible_tokens.shape[:2]:
            raise ValueError(
                "MAEDecoder expects tokens (B, n_keep, encoder_dim) and keep_indices "
                f"(B, n_keep); got {tuple(visible_tokens.shape)} and "
                f"{tuple(keep_indices.shape)}."
            )
        x = self.embed(visible_tokens)
        batch, _, width = x.shape
        tokens = self.mask_token.to(x.dtype).expand(batch, self.num_patches, width)
        index = keep_indices.unsqueeze(-1).expand(-1, -1, width)
        x = tokens.scatter(1, index, x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.pred(self.norm(x))
