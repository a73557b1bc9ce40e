"""Backbones, preprocessing, augmentation, the expression classifier and its loading."""

# the pooling registry: --pooling name -> the keras layer that turns the feature map into a vector
POOLINGS = {"avg": "GlobalAveragePooling2D", "max": "GlobalMaxPooling2D", "flatten": "Flatten"}
