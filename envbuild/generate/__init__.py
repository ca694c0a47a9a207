"""Pure generators: a checked bundle in, the bytes of a generated file out (DESIGN "Generate")."""
