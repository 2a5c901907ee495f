"""paddlex_interpret.runtime.modes: dygraph's CPU threads raised for a block."""
import paddlex_interpret  # noqa: F401  (before paddlex)
from paddlex_interpret.runtime import modes


def test_dygraph_threads_can_be_raised_at_run_time():
    from paddle.base import core

    assert hasattr(core, "set_num_threads")  # Paddle 2.6 and 3.x
    before = modes.current_threads()
    with modes.dygraph_threads(2):
        assert modes.current_threads() == 2
    assert modes.current_threads() == before

