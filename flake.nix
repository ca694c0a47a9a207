{
  description = "envbuild: pin code, data, models and the environment of an ML project in one lock";

  # nixos-25.11: its Python set meets pyproject.toml's bounds (packaging >= 25 for the PEP 751
  # pylock model, poetry-core >= 2, tomlkit >= 0.13); nixos-24.05 does not. flake.lock pins one
  # revision of the branch (8fd9daa3, 2026-05-10), the default of generated flakes too
  # (envbuild/generate/nix.py says where rev and narHash come from); these machines cannot
  # fetch it, so the tests evaluate against a stand-in.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      pyproject = builtins.fromTOML (builtins.readFile ./pyproject.toml);

      # The system tools envbuild drives: uv resolves; buildah, podman, skopeo and umoci build
      # and move images; docker is the other image builder; nix evaluates and builds the
      # generated flakes; git records the code's commit.
      tools = pkgs: with pkgs; [ uv buildah podman skopeo umoci docker-client nix git ];
      # pyproject.toml's dependencies (uv comes from nixpkgs as a binary, not its PyPI wheel)
      # and its `test` extra.
      runtimeDeps = ps: with ps; [
        packaging tomlkit jinja2 rich httpx poetry-core pip-tools cyclonedx-python-lib fsspec
        pyyaml pathspec
      ];
      testDeps = ps: with ps; [ pytest hypothesis build pyyaml ];

      mkEnvbuild = pkgs:
        let ps = pkgs.python311Packages;
        in ps.buildPythonApplication {
          pname = "envbuild";
          inherit (pyproject.project) version;
          pyproject = true;
          # Only what the wheel and its tests need: no .venv, caches or results.
          src = lib.fileset.toSource {
            root = ./.;
            fileset = lib.fileset.unions [
              ./pyproject.toml ./README.md ./envbuild ./templates ./tests ./examples
            ];
          };
          build-system = [ ps.poetry-core ];
          dependencies = runtimeDeps ps;
          pythonRemoveDeps = [ "uv" ];
          makeWrapperArgs = [ "--prefix" "PATH" ":" (lib.makeBinPath [ pkgs.uv ]) ];
          # The offline part of the suite; tests/integration needs real tools and services.
          nativeCheckInputs = [ ps.pytestCheckHook ] ++ testDeps ps;
          pytestFlagsArray = [ "tests/unit" "tests/golden" ];
          pythonImportsCheck = [ "envbuild" ];
          meta.mainProgram = "envbuild";
        };
    in {
      packages = forAll (pkgs: rec {
        envbuild = mkEnvbuild pkgs;
        default = envbuild;
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [ (pkgs.python311.withPackages (ps: runtimeDeps ps ++ testDeps ps)) ]
            ++ tools pkgs;
          shellHook = ''
            export MLFLOW_DISABLE_TELEMETRY=true BENTOML_DO_NOT_TRACK=true DO_NOT_TRACK=1
          '';
        };
      });
    };
}
