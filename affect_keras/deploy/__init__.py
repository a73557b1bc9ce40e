"""From a trained run to models other programs use: inference model, exports, model card, prediction."""
