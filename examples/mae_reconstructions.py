"""A masked autoencoder on Fashion-MNIST: what it sees, and what it fills in.

**The pretext task.** Every image is cut into 7x7-pixel patches (16 of them on 28x28
images) and three quarters of them, drawn anew for every image at every step, are
hidden. The encoder, a Vision Transformer, sees only the 4 visible patches; a small
decoder puts a learnt "mask" token in every hidden place and predicts the pixels of
all the patches, and the loss is the squared error on the hidden ones (each patch
normalised by its own mean and spread, which the paper found gives better features).

**Why it teaches useful features.** With 75 % of the image gone, the missing pixels
cannot be copied from their neighbours, as they could with a few small holes: to fill
in a sleeve or a sole the network has to know what sleeves and soles look like and
where they go, given the few pieces it sees. It is the image version of BERT's masked
words. It is also cheap: the encoder runs on a quarter of the tokens, and the decoder,
which runs on all of them, is small.

**The paper.** He, Chen, Xie, Li, Dollár & Girshick (2022), *Masked Autoencoders Are
Scalable Vision Learners* (CVPR). They warn that MAE's features shine after
fine-tuning but are less *linearly* separable than contrastive ones: expect a modest
linear probe, and see the README's table (kNN and MLP probes).

**What this script does.** It fits ``MAEPretrainer`` (ViT-Tiny, cosine learning-rate
decay) on the Fashion-MNIST training images without labels for ``--max-time`` seconds,
compares a linear probe on raw pixels, on the same ViT untrained and on the MAE
features, and draws test images that the model never saw: the original, the masked
input and the reconstruction (visible patches pasted back). On a 2-core CPU 150 s give
two epochs, so the reconstructions are blurred; they sharpen with longer fits.

    python examples/mae_reconstructions.py --max-time 300 --out mae_reconstructions.png
    python examples/mae_reconstructions.py --quick       # a few seconds, a tiny ViT
"""

from _common import run_example

from skssl import MAEPretrainer

# A ViT small enough for the quick mode's few seconds.
TINY_VIT = {"patch_size": 4, "embed_dim": 32, "depth": 1, "num_heads": 2}

if __name__ == "__main__":
    mae = MAEPretrainer(lr_schedule="cosine", random_state=0)
    run_example("mae_reconstructions", __doc__, mae,
                quick_params={"encoder_kwargs": TINY_VIT, "decoder_dim": 32, "decoder_depth": 1})
