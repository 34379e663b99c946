"""Tables, figures, the results file and the paper's generated files, built only from stored rows
(a store or its exports), never from a model."""
