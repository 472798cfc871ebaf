"""The ``ivs`` (live video) control plane: channels, stream keys, streams and their sessions (``models``,
``streams``) and their HTTP routes (``responses``)."""
