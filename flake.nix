{
  description = "envbuild: pin code, data, models and the environment of an ML project in one lock";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # The system tools envbuild drives; the dev shell puts them on PATH.
      tools = pkgs: with pkgs; [ uv buildah podman skopeo docker-client nix git ];
      pythonEnv = pkgs: pkgs.python311.withPackages (ps: with ps; [
        packaging tomlkit jinja2 rich httpx poetry-core pip-tools
        pytest hypothesis build
      ]);
    in {
      packages = forAll (pkgs: {
        default = pkgs.python311Packages.buildPythonApplication {
          pname = "envbuild";
          version = "0.1.0";
          pyproject = true;
          src = ./.;
          build-system = [ pkgs.python311Packages.poetry-core ];
          dependencies = with pkgs.python311Packages; [
            packaging tomlkit jinja2 rich httpx poetry-core pip-tools
          ];
          # uv comes from nixpkgs rather than from its PyPI wheel.
          makeWrapperArgs = [ "--prefix" "PATH" ":" "${pkgs.lib.makeBinPath [ pkgs.uv ]}" ];
          pythonRemoveDeps = [ "uv" ];
        };
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [ (pythonEnv pkgs) ] ++ tools pkgs;
          shellHook = ''
            export MLFLOW_DISABLE_TELEMETRY=true BENTOML_DO_NOT_TRACK=true DO_NOT_TRACK=1
          '';
        };
      });
    };
}
