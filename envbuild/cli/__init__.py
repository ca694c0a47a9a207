"""The CLI: argument parsing, progress and error rendering. The only place that prints or exits."""
