"""paddlex_interpret.runtime.devices: the batch size rule."""
import paddlex_interpret  # noqa: F401  (before paddlex)
from paddlex_interpret.runtime import devices


def test_batch_size_rule():
    small = devices.suggest_batch_size((64, 64, 3), device="cpu")
    big = devices.suggest_batch_size((224, 224, 3), device="cpu")
    assert small == 64 and 1 <= big <= 64
    assert devices.suggest_batch_size((4096, 4096, 3), device="cpu") >= 1
    per_image = 224 * 224 * 3 * (1 + 4 * (1 + devices.ACTIVATION_FACTOR))
    budget = min(devices.MEMORY_FRACTION * devices.available_memory("cpu"),
                 devices.MAX_BATCH_BYTES)
    assert big == max(1, min(64, int(budget // per_image)))
