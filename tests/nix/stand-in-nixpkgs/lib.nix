# STAND-IN for the few nixpkgs `lib` functions envbuild's flakes call (same names, same results).
rec {
  genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  makeBinPath = paths: builtins.concatStringsSep ":" (map (p: "${p}/bin") paths);
  escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
  concatMapStringsSep = sep: f: xs: builtins.concatStringsSep sep (map f xs);
  # nixpkgs' lib.fileset and friends are not provided: add them here when a flake needs them.
}
