"""int8attn: integer transformer numerics as verified Verilog."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("int8attn")
except PackageNotFoundError:
    __version__ = "0+unknown"


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each of ``packages`` (``not installed`` where it is not), for reports."""
    versions = {}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions
