"""What every sandbox service shares: settings, state, chat tokens, TLS, SigV4, model validation, errors."""
