# STAND-IN NIXPKGS, FOR ENVBUILD'S TESTS ONLY. This is not nixpkgs.
#
# Real nixpkgs cannot be fetched on the machines the tests run on (no network, no binary
# cache). The tests evaluate envbuild's generated flakes with
#   --override-input nixpkgs path:tests/nix/stand-in-nixpkgs
# and this flake provides just the functions those flakes call, with the same argument shapes,
# as plain `derivation`s: evaluation and `.drvPath` work, and a wrong attribute name or
# argument fails here as it would against nixpkgs.
#
# What it can build: `fetchurl` (Nix's own builtin:fetchurl, a fixed-output derivation) and
# `linkFarm` (the host's /bin/sh, so only with `--option sandbox false`). Everything else is a
# placeholder whose builder fails on purpose: a real build of the environment or the image
# needs real nixpkgs and its binary cache.
{
  description = "STAND-IN nixpkgs for envbuild's tests: not nixpkgs";

  outputs = { self }:
    let
      lib = import ./lib.nix;
      systems = [ "x86_64-linux" "aarch64-linux" ];
    in {
      inherit lib;
      legacyPackages = lib.genAttrs systems (system: import ./pkgs.nix { inherit lib system; });
    };
}
