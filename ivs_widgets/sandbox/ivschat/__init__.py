"""The ``ivschat`` control plane: the 17 API operations (``models``) and their HTTP routes (``responses``)."""
