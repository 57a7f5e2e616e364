"""Package layout beyond pyproject.toml: the Hydra configs in ``conf/`` ship inside the package as ``src.conf``.

So a non-editable ``pip install .`` can run ``deband-train`` from any folder; a source checkout keeps
reading ``conf/`` in place (``src.utils.hydra_utils.CONFIG_PATH``).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["src", "src.*"]), "src.conf"],
    package_dir={"src.conf": "conf"},
    package_data={"src.conf": ["*.yaml", "*/*.yaml", "*/*/*.yaml"], "src.weights": ["*.pt"]},
)
