"""Imported at interpreter start-up by ``paddlex_interpret-compat.pth``: registers the cheap
``paddle.fluid`` import alias (see :mod:`paddlex_interpret.compat`) without importing paddle."""
try:
    from paddlex_interpret.compat import install_fluid_alias

    install_fluid_alias()
except Exception:  # never break interpreter start-up
    pass
