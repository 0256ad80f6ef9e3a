"""What every layer shares: the error hierarchy, logging, metrics, and how env text is read.

The bottom of the import order: nothing here imports another package of the
service. `errors` is the one error hierarchy (rendered once into OpenAI's
envelope), `logs` the JSON lines with secrets masked, `metrics` Prometheus,
`env_values` the readers that turn an environment variable's text into a
typed value, `version` the package's own, and `clock` the one definition of
time the stores and the supervisor take (and tests replace).
"""
