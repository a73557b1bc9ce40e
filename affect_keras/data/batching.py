"""The choices that shape training batches, as names: the loaders (`loader.FaceBatches`, `tfdata`) act on
them, the CLI lists them. Kept apart from the loaders so that listing them imports no keras."""

from affect_keras.data.mixing import MIXERS

TARGETS = ("majority", "votes")  # one-hot majority labels | FER+ vote distributions
# how an epoch draws the training images (AffectNet paper, Table 7):
#   none: each image once; oversample: class-balanced batches (draws with probability 1 / class count);
#   upsample: each image once, the other classes' images repeated up to the largest class's count;
#   undersample: each class drawn down to the smallest class's count, a new draw every epoch
BATCH_SAMPLINGS = ("none", "oversample", "upsample", "undersample")
MIXES = ("none", *MIXERS)
PIPELINES = ("auto", "tf.data", "pydataset")  # auto: tf.data on the TensorFlow backend, else FaceBatches
