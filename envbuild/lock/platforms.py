"""Target platforms: which wheel tags and which marker environment each one means. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
# manylinux's legacy names, by the glibc minor version they stand for.
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True, kw_only=True)
class Target:
    platform: str  # "linux/amd64"
    python: str  # "3.11" or "3.11.4"
    glibc: str  # newest glibc a wheel may require, "2.36"

    @property
    def arch(self) -> str:
        return ARCH[self.platform]

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python.split(".")[:2]
        return int(major), int(minor)

    @property
    def marker_env(self) -> dict[str, str]:
        """The PEP 508 environment of this target, for evaluating markers."""
        parts = self.python.split(".")
        full = self.python if len(parts) == 3 else f"{self.python}.0"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.arch,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": full,
            "python_version": ".".join(parts[:2]),
            "sys_platform": "linux",
            "extra": "",
        }

    @property
    def environment_marker(self) -> str:
        """How pylock.toml's `environments` names this target."""
        return f"sys_platform == 'linux' and platform_machine == '{self.arch}'"

    def _platform_tags(self) -> list[str]:
        newest = int(self.glibc.split(".")[1])
        tags = []
        for minor in range(newest, 4, -1):
            tags.append(f"manylinux_2_{minor}_{self.arch}")
            if minor in _LEGACY:
                tags.append(f"{_LEGACY[minor]}_{self.arch}")
        return tags

    @cached_property
    def tag_priority(self) -> dict[Tag, int]:
        """Every wheel tag this target installs, mapped to its rank (0 is preferred)."""
        py = self.python_tuple
        abi = f"cp{py[0]}{py[1]}"
        platforms = self._platform_tags()
        ordered = [
            *cpython_tags(py, abis=[abi], platforms=platforms),
            *compatible_tags(py, interpreter=abi, platforms=platforms),
        ]
        return {tag: rank for rank, tag in reversed(list(enumerate(ordered)))}

    def wheel_rank(self, filename: str) -> int | None:
        """The rank of a wheel for this target, or None when it does not install here."""
        try:
            _, _, _, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return None
        ranks = [self.tag_priority[t] for t in tags if t in self.tag_priority]
        return min(ranks) if ranks else None


def targets_for(platforms: tuple[str, ...], python: str, glibc: str) -> tuple[Target, ...]:
    return tuple(Target(platform=p, python=python, glibc=glibc) for p in sorted(platforms))
