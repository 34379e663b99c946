"""Tables and figures, built only from the results store (never from a model)."""
