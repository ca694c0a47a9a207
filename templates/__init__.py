# Not code: poetry-core packages a directory of several files only when it holds a .py file,
# so this makes templates/ ship inside the wheel as envbuild/templates (see pyproject.toml).
