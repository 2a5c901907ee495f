"""Where models run: modes (eval mode, the training-state guard, threads), the fingerprint,
devices and memory, export, the inference engine and its workers, the per-model cache, the
``'auto'`` policy and the scheduling of LIME's batches. Importing it does not import Paddle."""
