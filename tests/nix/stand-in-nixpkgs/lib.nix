# STAND-IN for the few nixpkgs `lib` functions envbuild's flakes call (same names, same results).
rec {
  genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  makeBinPath = paths: builtins.concatStringsSep ":" (map (p: "${p}/bin") paths);
  escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
  concatMapStringsSep = sep: f: xs: builtins.concatStringsSep sep (map f xs);
  hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  # lib.fileset, reduced to a union of paths (files or whole directories).
  fileset = {
    unions = paths: paths;
    toSource = { root, fileset }: builtins.path {
      name = "source";
      path = root;
      filter = path: type: builtins.any (f:
        let keep = toString f;
        in path == keep || hasPrefix (keep + "/") path || hasPrefix (path + "/") keep) fileset;
    };
  };
}
