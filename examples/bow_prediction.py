"""Predicting bags of visual words: a student learns what a teacher sees, from a crop.

**The pretext task.** A teacher network, already trained (here by rotation
prediction), describes every location of an image with its feature map. Before the
student trains, k-means on a sample of these local descriptors gives a vocabulary of
*visual words* (256 by default): recurring local patterns such as "a straight vertical
edge of a sleeve" or "the corner of a sole". The target of an image is its *bag of
words*: which words the teacher finds in the clean image, as a distribution over the
vocabulary. The student sees a perturbed copy (a random crop resized back, a flip,
colour jitter) and must predict the bag of the whole clean image.

**Why it teaches useful features.** From a crop that shows half a shoe, predicting
that the whole image contains a heel and laces requires recognising the object and
knowing what else belongs to it: the student learns context and parts, at the level
of the whole image, while the teacher's words were local. The words are discrete and
few, so the target ignores the small details that pixel-level objectives (MAE) spend
capacity on. The paper found the student much better than its teacher, and the method
can be iterated: the student becomes the next teacher.

**The papers.** Gidaris, Bursuc, Komodakis, Pérez & Cord (2020), *Learning
Representations by Predicting Bags of Visual Words* (CVPR, BoWNet); soft targets from
Gidaris et al. (2021), *OBoW: Online Bag-of-Visual-Words Generation for Self-Supervised
Learning*. The bag of words itself is the classic image representation of Csurka et al.
(2004) and Sivic & Zisserman (2003); ``visual_bow.py`` shows it without any network.

**What this script does.** It trains the teacher, a ``RotationPretrainer``, for half of
``--max-time``, then the student, a ``BoWPretrainer`` whose teacher is the fitted
rotation model wrapped in ``FrozenEstimator`` (so that it is used as fitted, never
refitted), for the other half, both on the Fashion-MNIST training images without
labels. It compares a linear probe on raw pixels, on the teacher's and on the student's
features, and draws the task on test images: the perturbed copy the student sees, and
the target bag of words the teacher sees in the clean image.

    python examples/bow_prediction.py            # about 4 minutes on 2 CPU cores
    python examples/bow_prediction.py --quick    # a few seconds
"""

import _common as common
from sklearn.frozen import FrozenEstimator

from skssl import BoWPretrainer, RotationPretrainer


def main(argv=None):
    args = common.parse_args("bow_prediction", __doc__, argv, max_time=150.0)
    data = common.load_data(args.quick)
    X = common.training_images(data, args)
    teacher = common.configure(RotationPretrainer(random_state=0), args, max_time=args.max_time / 2)
    common.fit(teacher, X, "teacher (RotationPretrainer)")
    student = BoWPretrainer(teacher=FrozenEstimator(teacher), random_state=0)
    common.configure(student, args, max_time=args.max_time / 2, quick={"n_words": 64})
    common.fit(student, X, "student (BoWPretrainer)")
    features = common.compare(data, {"rotation teacher": teacher, "BoW student": student},
                              args.quick)
    common.save(common.method_figure(student, data, features["BoW student"], args), args.out)


if __name__ == "__main__":
    main()
