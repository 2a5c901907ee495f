"""Where models run: modes (eval mode, the training-state guard, threads), the fingerprint,
devices and memory, export, the inference engine, the per-model cache and the ``'auto'`` policy.
Importing it does not import Paddle."""
