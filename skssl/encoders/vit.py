"""``"vit_tiny"`` and ``"vit_small"``: Vision Transformers sized for small images.

The encoder exposes its patch tokens (:meth:`VisionTransformer.forward_tokens`) and
the pixel patches they come from (:meth:`VisionTransformer.patchify`), so that MAE
can encode only the visible patches and reconstruct the others.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.masking import patchify, unpatchify
from ._registry import register_encoder

_PATCH_SIZES = (16, 8, 4, 2, 1)
_MIN_GRID = 7


def _auto_patch_size(image_size):
    """The largest of 16, 8, 4, 2, 1 dividing both sides into at least 7 patches."""
    for p in _PATCH_SIZES:
        if all(side % p == 0 and side // p >= _MIN_GRID for side in image_size):
            return p
    return 1


def sincos_pos_embed_2d(embed_dim, grid_size):
    """Fixed 2-D sine-cosine positional embedding of a grid of patches.

    Half of the channels encode the row, half the column, each as sines and
    cosines of geometrically spaced frequencies (MAE, He et al., 2022; after
    Vaswani et al., 2017).

    Parameters
    ----------
    embed_dim : int
        Embedding size; a multiple of 4.
    grid_size : tuple of (int, int)
        Number of patch rows and columns.

    Returns
    -------
    pos_embed : torch.Tensor of shape (rows * columns, embed_dim)
        Float32, patches in row-major order.

    Examples
    --------
    >>> from skssl.encoders.vit import sincos_pos_embed_2d
    >>> pe = sincos_pos_embed_2d(8, (2, 3))
    >>> pe.shape
    torch.Size([6, 8])
    >>> pe[0].tolist()  # row 0, column 0: sin(0) = 0 and cos(0) = 1
    [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    """
    if embed_dim % 4:
        raise ValueError(f"The sin-cos embedding needs embed_dim % 4 == 0, got {embed_dim}.")
    rows, cols = grid_size
    quarter = embed_dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    grid = torch.meshgrid(
        torch.arange(rows, dtype=torch.float64),
        torch.arange(cols, dtype=torch.float64),
        indexing="ij",
    )
    parts = []
    for pos in grid:
        angles = pos.reshape(-1, 1) * omega
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1).float()


class TransformerBlock(nn.Module):
    """Pre-norm Transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``.

    The block of ViT (Dosovitskiy et al., 2021) without dropout, as MAE uses it.
    Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention`.

    Parameters
    ----------
    dim : int
        Token size.
    num_heads : int
        Number of attention heads; divides ``dim``.
    mlp_ratio : float, default=4.0
        Hidden size of the MLP, relative to ``dim``.

    Examples
    --------
    >>> import torch
    >>> from skssl.encoders.vit import TransformerBlock
    >>> TransformerBlock(16, num_heads=2)(torch.zeros(3, 5, 16)).shape
    torch.Size([3, 5, 16])
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide the token size {dim}.")
        self.num_heads = num_heads
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        batch, n_tokens, dim = x.shape
        qkv = self.qkv(self.norm1(x)).view(batch, n_tokens, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(attn.transpose(1, 2).reshape(batch, n_tokens, dim))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class VisionTransformer(nn.Module):
    """Vision Transformer encoder with its patch tokens exposed (for MAE).

    An image is cut into ``patch_size`` x ``patch_size`` patches, each linearly
    embedded, plus a positional embedding; ``depth`` pre-norm Transformer blocks and
    a final LayerNorm follow (Dosovitskiy et al., 2021). ``forward`` pools the
    tokens into ``(B, embed_dim)`` features.

    Parameters
    ----------
    in_channels : int, default=3
        Number of input channels.
    image_size : int or tuple of (int, int), default=(32, 32)
        Input height and width; the network only takes images of this size.
    patch_size : int or None, default=None
        Side of the square patches; it must divide both sides of the image. ``None``
        picks the largest of 16, 8, 4, 2, 1 that divides both sides into at least
        7 patches each: 4 for 28 and 32 px (7x7 and 8x8 patches), 8 for 64 and
        96 px, 16 for 224 px; 1 for images under 7 px.
    embed_dim : int, default=192
        Token size, also ``num_features``.
    depth : int, default=12
        Number of Transformer blocks.
    num_heads : int, default=3
        Attention heads per block; divides ``embed_dim``.
    mlp_ratio : float, default=4.0
        Hidden size of the MLPs, relative to ``embed_dim``.
    pos_embed : {"sincos", "learned"}, default="sincos"
        Fixed 2-D sine-cosine positional embedding (as in MAE, see
        :func:`sincos_pos_embed_2d`), or a learned one.
    pool : {"mean", "cls"}, default="mean"
        Features are the mean of the patch tokens, or the output of an extra
        learned class token prepended to them.

    Attributes
    ----------
    num_features : int
        Size of the pooled output, ``embed_dim``.
    embed_dim : int
        Token size.
    image_size : tuple of (int, int)
        The image size the network takes.
    patch_size : int
        Side of the patches.
    grid_size : tuple of (int, int)
        Number of patch rows and columns.
    num_patches : int
        ``grid_size[0] * grid_size[1]``.
    num_prefix_tokens : int
        1 with ``pool="cls"`` (the class token comes first), else 0.

    Examples
    --------
    >>> import torch
    >>> from skssl.encoders import VisionTransformer
    >>> vit = VisionTransformer(1, (28, 28), embed_dim=32, depth=2, num_heads=2)
    >>> vit.patch_size, vit.grid_size, vit.num_patches
    (4, (7, 7), 49)
    >>> x = torch.zeros(2, 1, 28, 28)
    >>> vit(x).shape
    torch.Size([2, 32])
    >>> vit.patchify(x).shape
    torch.Size([2, 49, 16])
    >>> keep = torch.tensor([[0, 5, 9], [1, 2, 3]])  # visible patches, per image
    >>> vit.forward_tokens(x, keep).shape
    torch.Size([2, 3, 32])
    """

    def __init__(
        self,
        in_channels=3,
        image_size=(32, 32),
        patch_size=None,
        embed_dim=192,
        depth=12,
        num_heads=3,
        mlp_ratio=4.0,
        pos_embed="sincos",
        pool="mean",
    ):
        super().__init__()
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        image_size = tuple(int(s) for s in image_size)
        if patch_size is None:
            patch_size = _auto_patch_size(image_size)
        if patch_size < 1 or any(side % patch_size for side in image_size):
            raise ValueError(
                f"The image size {image_size[0]}x{image_size[1]} is not divisible by "
                f"patch_size={patch_size}; pick a patch size that divides both sides "
                f"(or patch_size=None for {_auto_patch_size(image_size)})."
            )
        if pos_embed not in ("sincos", "learned"):
            raise ValueError(f'pos_embed must be "sincos" or "learned", got {pos_embed!r}.')
        if pool not in ("mean", "cls"):
            raise ValueError(f'pool must be "mean" or "cls", got {pool!r}.')
        if depth < 1 or embed_dim < 1 or in_channels < 1:
            raise ValueError(
                f"in_channels, embed_dim and depth must be at least 1; got in_channels="
                f"{in_channels}, embed_dim={embed_dim}, depth={depth}."
            )
        self.image_size = image_size
        self.patch_size = patch_size
        self.grid_size = (image_size[0] // patch_size, image_size[1] // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.embed_dim = self.num_features = embed_dim
        self.pool = pool
        self.num_prefix_tokens = int(pool == "cls")

        self.patch_embed = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)
        if pos_embed == "sincos":
            self.register_buffer("pos_embed", sincos_pos_embed_2d(embed_dim, self.grid_size)[None])
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, embed_dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if pool == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
            nn.init.normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList(
            TransformerBlock(embed_dim, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self):
        # MAE's initialisation: Xavier-uniform for every linear map, the patch
        # embedding included (seen as a linear map of the flattened patch).
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def _check_size(self, x):
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(
                f"This VisionTransformer takes {self.image_size[0]}x{self.image_size[1]} "
                f"images, got {x.shape[-2]}x{x.shape[-1]}."
            )

    def patchify(self, x):
        """Cut images into flattened patches, in the order of the patch tokens.

        Parameters
        ----------
        x : torch.Tensor of shape (B, C, H, W)

        Returns
        -------
        patches : torch.Tensor of shape (B, num_patches, patch_size**2 * C)
            Patches in row-major order; each patch is flattened as
            ``(row, column, channel)``, as in MAE (:func:`skssl.ops.patchify`).

        Examples
        --------
        >>> import torch
        >>> from skssl.encoders import VisionTransformer
        >>> vit = VisionTransformer(1, (4, 4), patch_size=2, embed_dim=8, depth=1, num_heads=1)
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> vit.patchify(x)[0, 1].tolist()  # top-right patch
        [2.0, 3.0, 6.0, 7.0]
        """
        self._check_size(x)
        return patchify(x, self.patch_size)

    def unpatchify(self, patches):
        """Reassemble images from patches; the inverse of :meth:`patchify`.

        Parameters
        ----------
        patches : torch.Tensor of shape (B, num_patches, patch_size**2 * C)

        Returns
        -------
        x : torch.Tensor of shape (B, C, H, W)

        Examples
        --------
        >>> import torch
        >>> from skssl.encoders import VisionTransformer
        >>> vit = VisionTransformer(3, (8, 8), patch_size=4, embed_dim=8, depth=1, num_heads=1)
        >>> x = torch.randn(2, 3, 8, 8)
        >>> torch.equal(vit.unpatchify(vit.patchify(x)), x)
        True
        """
        channels = patches.shape[-1] // self.patch_size**2
        return unpatchify(patches, self.patch_size, self.image_size, channels)

    def forward_tokens(self, x, keep=None):
        """Encode the patches (all, or the ones in ``keep``) into tokens.

        The positional embedding is added before the patches are selected, so a
        token knows where its patch is; the other patches are not seen at all
        (MAE's encoder, He et al., 2022).

        Parameters
        ----------
        x : torch.Tensor of shape (B, C, H, W)
            Images.
        keep : torch.LongTensor of shape (B, n_keep), default=None
            For each image, the indices (row-major, as in :meth:`patchify`) of the
            patches to encode. ``None`` encodes all ``num_patches`` patches.

        Returns
        -------
        tokens : torch.Tensor of shape (B, num_prefix_tokens + n_keep, embed_dim)
            After the final LayerNorm; with ``pool="cls"`` the class token comes first.

        Examples
        --------
        >>> import torch
        >>> from skssl.encoders import VisionTransformer
        >>> vit = VisionTransformer(1, (8, 8), patch_size=2, embed_dim=16, depth=1,
        ...                         num_heads=2, pool="cls")
        >>> x = torch.zeros(2, 1, 8, 8)
        >>> vit.forward_tokens(x).shape  # class token + 16 patches
        torch.Size([2, 17, 16])
        >>> keep = torch.rand(2, vit.num_patches).argsort(dim=1)[:, :4]  # 4 random patches
        >>> vit.forward_tokens(x, keep).shape
        torch.Size([2, 5, 16])
        """
        self._check_size(x)
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        if keep is not None:
            if keep.ndim != 2 or keep.shape[0] != x.shape[0] or keep.dtype != torch.long:
                raise ValueError(
                    f"keep must be a LongTensor of shape (batch={x.shape[0]}, n_keep); got "
                    f"{keep.dtype} of shape {tuple(keep.shape)}."
                )
            index = keep.unsqueeze(-1).expand(-1, -1, self.embed_dim)
            tokens = tokens.gather(1, index)
        if self.pool == "cls":
            tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def feature_map(self, x):
        """The patch tokens as a grid, the class token left out: ``(B, embed_dim, rows,
        columns)`` for ``(B, C, H, W)`` images, each patch's token at the patch's place in
        ``grid_size`` (the contract of :func:`skssl.encoders.feature_map`).

        Examples
        --------
        >>> import torch
        >>> from skssl.encoders import VisionTransformer
        >>> vit = VisionTransformer(1, (28, 28), embed_dim=32, depth=1, num_heads=2, pool="cls")
        >>> vit.feature_map(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 32, 7, 7])
        """
        tokens = self.forward_tokens(x)[:, self.num_prefix_tokens :]
        return tokens.transpose(1, 2).reshape(len(x), self.embed_dim, *self.grid_size)

    def forward(self, x):
        tokens = self.forward_tokens(x)
        if self.pool == "cls":
            return tokens[:, 0]
        return tokens.mean(dim=1)


@register_encoder("vit_tiny")
def vit_tiny(in_channels, image_size, patch_size=None, embed_dim=192, depth=12, num_heads=3,
             mlp_ratio=4.0, pos_embed="sincos", pool="mean"):
    """Build a ViT-Tiny :class:`VisionTransformer` (192 wide, 12 blocks, 3 heads).

    Parameters
    ----------
    in_channels, image_size : int, tuple of (int, int)
        Channels, height and width of the input images.
    patch_size, embed_dim, depth, num_heads, mlp_ratio, pos_embed, pool
        See :class:`VisionTransformer`; the defaults are ViT-Tiny's (Touvron et
        al., 2021), with the patch size chosen from the image size.

    Returns
    -------
    encoder : VisionTransformer
        In train mode, with ``num_features=embed_dim``.

    Examples
    --------
    >>> from skssl.encoders import make_encoder
    >>> vit = make_encoder("vit_tiny", 3, (32, 32))
    >>> vit.num_features, vit.patch_size, vit.num_patches
    (192, 4, 64)
    """
    # The factory's parameters are the class's: only the defaults differ.
    return VisionTransformer(**locals())


@register_encoder("vit_small")
def vit_small(in_channels, image_size, patch_size=None, embed_dim=384, depth=12, num_heads=6,
              mlp_ratio=4.0, pos_embed="sincos", pool="mean"):
    """Build a ViT-Small :class:`VisionTransformer` (384 wide, 12 blocks, 6 heads).

    The parameters are :func:`vit_tiny`'s, with ViT-Small's defaults (Touvron et
    al., 2021); the patch size is chosen from the image size.

    Examples
    --------
    >>> from skssl.encoders import make_encoder
    >>> vit = make_encoder("vit_small", 1, (224, 224), depth=1)
    >>> vit.num_features, vit.patch_size, vit.grid_size
    (384, 16, (14, 14))
    """
    # The factory's parameters are the class's: only the defaults differ.
    return VisionTransformer(**locals())
