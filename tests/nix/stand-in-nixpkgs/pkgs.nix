# STAND-IN for `nixpkgs.legacyPackages.<system>`: placeholders with nixpkgs' argument shapes.
{ lib, system }:
let
  # A derivation that refuses to build: this is a stand-in, not the package.
  placeholder = name: attrs: derivation ({
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" "echo 'stand-in nixpkgs: ${name} needs real nixpkgs to build' >&2; exit 1" ];
    standIn = true;
  } // attrs);

  # Derivation attributes must be strings, lists, numbers or derivations: nested attribute
  # sets (passthru, config) go in as JSON, which keeps their store references.
  flatten = attrs: builtins.mapAttrs
    (n: v: if builtins.isAttrs v && !(v ? outPath) then builtins.toJSON v
           else if builtins.isFunction v then "<function>" else v) attrs;

  mkDerivation = attrs:
    let name = attrs.name or "${attrs.pname}-${attrs.version}";
    in placeholder name (flatten (removeAttrs attrs [ "name" "passthru" "meta" ]));

  package = name: placeholder "${name}-stand-in" { };

  # Python and its package set: the names the flakes use, as placeholders.
  pythonPackageNames = [ "packaging" "tomlkit" "jinja2" "rich" "httpx" "poetry-core"
    "pip-tools" "pytest" "hypothesis" "build" "pyyaml" "pytestCheckHook" "pip"
    "cyclonedx-python-lib" "fsspec" "pathspec" ];
  pythonPackages = lib.genAttrs pythonPackageNames package // {
    buildPythonApplication = attrs: mkDerivation attrs;
  };
  python = version: (package "python${version}") // {
    interpreter = "${package "python${version}"}/bin/python${version}";
    sitePackages = "lib/python${version}/site-packages";
    pkgs = pythonPackages;
    withPackages = f: placeholder "python${version}-env" { packages = f pythonPackages; };
  };
in {
  inherit lib;

  # Nix's own fixed-output fetcher, as nixpkgs' bootstrap fetchurl uses it: really fetches.
  fetchurl = { url, hash ? "", sha256 ? "", name ? baseNameOf url }: derivation {
    inherit name system url;
    builder = "builtin:fetchurl";
    outputHashMode = "flat";
    outputHashAlgo = if hash != "" then "" else "sha256";
    outputHash = if hash != "" then hash else sha256;
    executable = false;
    unpack = false;
    urls = [ url ];
    preferLocalBuild = true;
  };

  # Symlinks to store paths under the given names: builds with the host's /bin/sh (tests pass
  # --option sandbox false), the same tree nixpkgs' linkFarm makes.
  linkFarm = name: entries: derivation {
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" (builtins.concatStringsSep "\n" ([ "set -e" "mkdir -p \"$out\"" ] ++ map (e:
      "mkdir -p \"$(dirname \"$out\"/${lib.escapeShellArg e.name})\" && "
      + "ln -s ${lib.escapeShellArg "${e.path}"} \"$out\"/${lib.escapeShellArg e.name}")
      entries)) ];
    PATH = "/usr/bin:/bin";
  };

  runCommand = name: env: script: mkDerivation (env // { inherit name; buildCommand = script; });
  mkShell = attrs: mkDerivation ({ name = "nix-shell"; } // attrs);
  stdenv = {
    inherit mkDerivation;
    cc = package "gcc-wrapper" // { cc = package "gcc" // { lib = package "gcc-lib"; }; };
  };
  dockerTools.buildLayeredImage = attrs: mkDerivation (attrs // { name = "docker-image-${attrs.name}.tar.gz"; });

  python311 = python "3.11";
  python312 = python "3.12";
  python311Packages = pythonPackages;
  autoPatchelfHook = package "auto-patchelf-hook";
  zlib = package "zlib";
} // lib.genAttrs [ "uv" "buildah" "podman" "skopeo" "umoci" "docker-client" "nix" "git" ] package
